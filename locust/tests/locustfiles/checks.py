"""catch_response checks, an assert, FastHttpUser's rest(), helpers with arguments and a
quitting listener that sets the exit code."""
from locust import FastHttpUser, between, events, task


@events.quitting.add_listener
def _(environment, **kw):
    if environment.stats.total.fail_ratio > 0.01:
        environment.process_exit_code = 1
    elif environment.stats.total.get_response_time_percentile(0.95) > 800:
        environment.process_exit_code = 1
    else:
        environment.process_exit_code = 0


class Checker(FastHttpUser):
    wait_time = between(0.05, 0.15)

    def login(self, username, password):
        with self.rest("POST", "/api/v1/auth/token/", json={"username": username, "password": password}) as resp:
            self.token = resp.js["token"]

    def on_start(self):
        self.login("loadtest_user", "loadtest-pass")

    @task(3)
    def create(self):
        with self.client.post(
            "/api/v1/deployments/",
            json={"app_name": "app", "version": "1.0.0", "target_ring": "lab"},
            headers={"Authorization": f"Token {self.token}"},
            catch_response=True,
        ) as r:
            if r.status_code != 201:
                r.failure("not created")
            if "app" not in r.text:
                r.failure("no app name")

    @task
    def status(self):
        r = self.client.get("/status/204")
        assert r.status_code == 204, "unexpected status"
