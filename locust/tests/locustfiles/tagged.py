"""Weights three ways (class weight, @task(n), a tasks dict), tags, module task functions
taking the user, constant_pacing, and a class inheriting from an abstract base."""
from locust import HttpUser, constant_pacing, tag, task

DEPLOYMENTS = "/api/v1/deployments/"


def health(user):
    user.client.get("/")


def echo(user):
    user.client.post("/echo", json={"ping": "pong", "n": 3})


class Base(HttpUser):
    abstract = True
    wait_time = constant_pacing(0.2)

    def on_start(self):
        r = self.client.post("/api/v1/auth/token/", json={"username": "loadtest_user", "password": "loadtest-pass"})
        self.token = r.json()["token"]
        self.client.headers["Authorization"] = f"Token {self.token}"


class Reader(Base):
    weight = 3
    tasks = {health: 1, echo: 2}

    @tag("read")
    @task(4)
    def deployments(self):
        self.client.get(DEPLOYMENTS, params={"page": 2})


class Auditor(Base):
    weight = 1

    @task
    def audit(self):
        self.client.get(DEPLOYMENTS + "?page=1", name="audit")
