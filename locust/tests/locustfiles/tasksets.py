"""Task sets as Locust's docs show them: a nested TaskSet that browses until it interrupts, an
inline SequentialTaskSet that walks one deployment through its life in order, an `if` guard
and a sleep that opens a task."""
import time

from locust import HttpUser, SequentialTaskSet, TaskSet, between, constant, task


class Browse(TaskSet):
    wait_time = constant(0.05)

    def on_start(self):
        self.client.get("/api/v1/connectors/status/")

    @task(3)
    def page(self):
        self.client.get("/api/v1/deployments/?page=1", name="/api/v1/deployments/")

    @task
    def pending(self):
        self.client.get("/api/v1/cab/pending/", name="/api/v1/cab/pending/")

    @task
    def done(self):
        self.interrupt()


class Operator(HttpUser):
    wait_time = between(0.05, 0.1)
    tasks = {Browse: 2}

    def on_start(self):
        r = self.client.post("/api/v1/auth/token/", json={"username": "loadtest_user", "password": "loadtest-pass"})
        self.token = r.json()["token"]
        self.client.headers["Authorization"] = f"Token {self.token}"

    @task
    class Lifecycle(SequentialTaskSet):
        @task
        def create(self):
            r = self.client.post("/api/v1/deployments/", json={"app_name": "app", "version": "1.0.0"})
            self.user.deployment_id = r.json()["id"]

        @task
        def inspect(self):
            self.client.get(f"/api/v1/deployments/{self.user.deployment_id}/", name="/api/v1/deployments/[id]/")

        @task
        def remediate(self):
            time.sleep(0.02)
            if self.user.deployment_id:
                self.client.post(f"/api/v1/deployments/{self.user.deployment_id}/remediate/",
                                 name="/api/v1/deployments/[id]/remediate/")

        @task
        def leave(self):
            self.interrupt()
