"""P4.3 scenario 3: publishers log in, pick a deployment, publish it to five planes."""
from locust import HttpUser, between, task


class ConnectorPublishingUser(HttpUser):
    wait_time = between(0.8, 1.5)

    def on_start(self):
        r = self.client.post("/api/v1/auth/token/", json={"username": "publisher_user", "password": "publisher-pass"})
        self.token = r.json()["token"]
        self.client.headers["Authorization"] = "Token " + self.token
        deployments = self.client.get("/api/v1/deployments/")
        self.deployment_id = deployments.json()["results"][0]["id"]

    @task(2)
    def publish_to_intune(self):
        self.client.post("/api/v1/connectors/intune/publish/", json={"deployment_id": self.deployment_id, "artifact": "pkg.intunewin"})

    @task(2)
    def publish_to_jamf(self):
        self.client.post("/api/v1/connectors/jamf/publish/", json={"deployment_id": self.deployment_id, "artifact": "pkg.pkg"})

    @task(2)
    def publish_to_sccm(self):
        self.client.post("/api/v1/connectors/sccm/publish/", json={"deployment_id": self.deployment_id, "artifact": "pkg.msi"})

    @task(1)
    def publish_to_landscape(self):
        self.client.post("/api/v1/connectors/landscape/publish/", json={"deployment_id": self.deployment_id, "artifact": "pkg.deb"})

    @task(1)
    def publish_to_ansible(self):
        self.client.post("/api/v1/connectors/ansible/publish/", json={"deployment_id": self.deployment_id, "artifact": "playbook.yml"})
