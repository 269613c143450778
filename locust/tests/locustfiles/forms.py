"""Form posts, basic auth, fixed_count users, a counter, random numbers and constants imported
from a module beside the locustfile."""
import itertools
import random

from locust import HttpUser, constant, task
from settings.values import CODES, CREDENTIALS, ECHO

ORDER = itertools.count(1)


class Admin(HttpUser):
    fixed_count = 2
    wait_time = constant(0.1)

    @task
    def home(self):
        self.client.get("/", auth=(CREDENTIALS["user"], CREDENTIALS["password"]))


class Visitor(HttpUser):
    wait_time = constant(0.05)

    @task(2)
    def order(self):
        self.client.post(ECHO, data={
            "order": f"o-{next(ORDER)}",
            "qty": random.randint(1, 5),
            "discount": random.uniform(0, 0.2),
        })

    @task
    def status(self):
        self.client.get(f"/status/{random.choice(CODES)}", name="/status/[code]")
