from locust import HttpUser, TaskSet, task, between


class Browse(TaskSet):
    @task
    def index(self):
        self.client.get("/")


class Visitor(HttpUser):
    wait_time = between(1, 2)

    @task
    def page(self):
        while True:
            self.client.get("/page")

    @task
    def upload(self):
        self.client.post("/upload", files={"f": open("data.bin", "rb")})
