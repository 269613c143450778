"""P4.3 scenario 2: CAB approvers list the pending approvals and decide each one once."""
import threading

from locust import HttpUser, between, task

PENDING = []
PENDING_LOCK = threading.Lock()


class CABApprovalUser(HttpUser):
    wait_time = between(0.3, 0.7)

    def on_start(self):
        r = self.client.post("/api/v1/auth/token/", json={"username": "cab_approver", "password": "cab-pass"})
        self.token = r.json()["token"]
        self.client.headers.update({"Authorization": f"Token {self.token}"})

    @task(4)
    def list_pending_approvals(self):
        r = self.client.get("/api/v1/cab/pending/?page_size=100", name="/api/v1/cab/pending/")
        with PENDING_LOCK:
            PENDING.extend(item["id"] for item in r.json()["results"])

    @task(3)
    def approve_deployment(self):
        with PENDING_LOCK:
            if not PENDING:
                return
            approval_id = PENDING.pop()
        self.client.post(
            f"/api/v1/cab/{approval_id}/approve/",
            json={"comment": "Approved by load test"},
            name="/api/v1/cab/[id]/approve/",
        )

    @task(1)
    def reject_deployment(self):
        try:
            approval_id = PENDING.pop()
        except IndexError:
            return
        self.client.post(
            f"/api/v1/cab/{approval_id}/reject/",
            json={"comment": "Rejected by load test: risk too high"},
            name="/api/v1/cab/[id]/reject/",
        )
