"""An unfinished workflow that no live worker can run says so (issue #11 item 1): its JSON
carries ``waiting_reason``, read and listed; one a worker knows, or a finished one, does not."""

from __future__ import annotations

import uuid

from tests.api.conftest import Api
from tests.api.test_workflows_api import start, wait_for_workflow


def test_a_workflow_no_live_worker_runs_says_so(wf_api: Api) -> None:
    _, _, c = wf_api.tenant()
    orphan = start(c, "nobody.runs.this", workflow_id=f"o-{uuid.uuid4().hex[:8]}",
                   allow_unregistered=True)
    got = c.get(f"/v1/workflows/{orphan['id']}").json()
    assert got["state"] == "running"
    assert got["waiting_reason"] == "no live worker runs workflow nobody.runs.this"
    listed = {w["id"]: w for w in c.get("/v1/workflows").json()["items"]}
    assert listed[orphan["id"]]["waiting_reason"] == got["waiting_reason"]

    known = start(c, "api.quick", workflow_id=f"k-{uuid.uuid4().hex[:8]}",
                  args={"seconds": 0.2})
    assert "waiting_reason" not in c.get(f"/v1/workflows/{known['id']}").json()
    wait_for_workflow(c, known["id"], "completed")
    assert "waiting_reason" not in c.get(f"/v1/workflows/{known['id']}").json()

    # Terminated, it waits for nothing any more.
    assert c.post(f"/v1/workflows/{orphan['id']}/terminate").status_code == 200
    assert "waiting_reason" not in c.get(f"/v1/workflows/{orphan['id']}").json()
