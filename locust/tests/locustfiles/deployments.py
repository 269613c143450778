"""P4.3 scenario 1 as a Locust user would write it from the plan."""
import random

from locust import HttpUser, between, task

RINGS = ["lab", "canary", "pilot", "production"]


class DeploymentUser(HttpUser):
    wait_time = between(1, 2)

    def on_start(self):
        response = self.client.post(
            "/api/v1/auth/token/",
            json={"username": "loadtest_user", "password": "loadtest-pass"},
        )
        self.token = response.json()["token"]
        self.client.headers.update({"Authorization": f"Token {self.token}"})

    @task(3)
    def create_deployment(self):
        with self.client.post(
            "/api/v1/deployments/",
            json={
                "app_name": f"app-{random.randint(1, 100000)}",
                "version": f"{random.randint(1, 9)}.{random.randint(0, 20)}.0",
                "target_ring": random.choice(RINGS),
            },
            catch_response=True,
        ) as response:
            self.deployment_id = response.json()["id"]

    @task
    def list_deployments(self):
        self.client.get(f"/api/v1/deployments/?page={random.randint(1, 5)}", name="/api/v1/deployments/")

    @task
    def get_deployment_details(self):
        self.client.get(f"/api/v1/deployments/{self.deployment_id}/", name="/api/v1/deployments/[id]/")
