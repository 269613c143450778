from locust import HttpUser, User, task, between


class Mqtt(User):
    @task
    def publish(self):
        self.client.publish("topic", "payload")


class Visitor(HttpUser):
    wait_time = between(1, 2)

    @task
    def page(self):
        while True:
            self.client.get("/page")

    @task
    def upload(self):
        self.client.post("/upload", files={"f": open("data.bin", "rb")})
