"""The common shape of public locustfiles: a login, a token header, weighted reads and writes
with generated bodies, a checked response, and a lighter class beside it."""
import uuid

from locust import FastHttpUser, HttpUser, constant, task, tag

RINGS = ["lab", "canary", "pilot", "production"]
LOGIN = {"username": "loadtest_user", "password": "loadtest-pass"}


class ApiUser(HttpUser):
    weight = 3
    wait_time = constant(0.5)

    def on_start(self):
        self.login()

    def login(self):
        with self.client.post("/api/v1/auth/token/", json=LOGIN, catch_response=True) as r:
            if r.status_code != 200:
                r.failure("login failed")
            self.token = r.json()["token"]
        self.client.headers.update({"Authorization": f"Token {self.token}"})

    @tag("read")
    @task(5)
    def list_page(self):
        self.client.get("/api/v1/deployments/", params={"page": 1}, name="/api/v1/deployments/")

    @tag("write")
    @task(2)
    def create(self):
        r = self.client.post(
            "/api/v1/deployments/",
            json={"app_name": f"app-{uuid.uuid4()}", "version": "1.0.0", "target_ring": "lab"},
        )
        assert r.status_code == 201, "not created"
        self.created = r.json()["id"]
        self.client.get(f"/api/v1/deployments/{self.created}/", name="/api/v1/deployments/[id]/")


class HealthUser(FastHttpUser):
    wait_time = constant(1)

    @task
    def health(self):
        with self.rest("GET", "/") as resp:
            pass
