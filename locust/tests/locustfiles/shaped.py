"""A user and Locust's documented stages shape: blast evaluates tick() into its stages."""
from locust import HttpUser, LoadTestShape, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task(2)
    def home(self):
        self.client.get("/")

    @task
    def echo(self):
        self.client.put("/echo", json={"a": 1})


class StagesShape(LoadTestShape):
    stages = [
        {"duration": 4, "users": 6, "spawn_rate": 6},
        {"duration": 8, "users": 12, "spawn_rate": 6},
        {"duration": 60, "users": 4, "spawn_rate": 4},
    ]

    def tick(self):
        run_time = self.get_run_time()
        for stage in self.stages:
            if run_time < stage["duration"]:
                return (stage["users"], stage["spawn_rate"])
        return None
