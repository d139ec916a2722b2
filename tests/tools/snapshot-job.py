#!/usr/bin/python3
"""Runs one snapshot job with QEMU's own QMP client, as QEMU's iotests
drive snapshot-save/-load/-delete: start it, wait for JOB_STATUS_CHANGE
concluded, read query-jobs, job-dismiss, wait for null.

  snapshot-job.py SOCKET COMMAND ARGS-JSON

PYTHONPATH must hold QEMU's python/ folder.  Prints, one a line:
  answer: the command's answer (JSON)
  statuses: the job's statuses from its events, space-separated
  job: its query-jobs entry once concluded (JSON)
  after: query-jobs after the dismissal (JSON)
  status: query-status's status
Every wait is bounded (60 s)."""
import asyncio
import json
import sys

from qemu.qmp import QMPClient


async def main(path, cmd, args):
    c = QMPClient("snapshot-job")
    await c.connect(path)
    jid = args["job-id"]
    statuses = []
    with c.listener() as listener:
        print("answer:", json.dumps(await c.execute(cmd, args)), flush=True)

        async def until(status):
            async for ev in listener:
                if (ev["event"] == "JOB_STATUS_CHANGE"
                        and ev["data"]["id"] == jid):
                    statuses.append(ev["data"]["status"])
                    if ev["data"]["status"] == status:
                        return

        await asyncio.wait_for(until("concluded"), 60)
        job = [j for j in await c.execute("query-jobs") if j["id"] == jid]
        await c.execute("job-dismiss", {"id": jid})
        await asyncio.wait_for(until("null"), 60)
    print("statuses:", " ".join(statuses))
    print("job:", json.dumps(job[0], sort_keys=True))
    print("after:", json.dumps(await c.execute("query-jobs")))
    print("status:", (await c.execute("query-status"))["status"])
    await c.disconnect()


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
