"""Locust's quickstart, pointed at routes the reference target serves: a loop of item views
with a sleep between them, and a login in on_start."""
import time

from locust import HttpUser, between, task


class QuickstartUser(HttpUser):
    wait_time = between(0.1, 0.3)

    @task
    def hello_world(self):
        self.client.get("/")
        self.client.post("/echo", data="world")

    @task(3)
    def view_items(self):
        for item_id in range(5):
            self.client.get(f"/echo?id={item_id}", name="/echo?id=[id]")
            time.sleep(0.05)

    def on_start(self):
        self.client.post("/api/v1/auth/token/", json={"username": "foo", "password": "bar"})
