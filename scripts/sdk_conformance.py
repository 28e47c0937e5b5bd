#!/usr/bin/env python3
# sdk_conformance.py: checks `codearts-bot sim` against the official Python SDK
# (huaweicloudsdkcodeartsbuild, run by scripts/sdk-conformance inside target/sdk-venv).
#
# Starts the simulator (30 jobs over 3 projects, a random AK/SK pair), then through the SDK's
# CodeArtsBuildClient, signing every call with AK/SK as the SDK does, calls ShowJobInfo for
# every job, ListProjectJobs (every page of every project) and ListJob (every page), and
# checks that the SDK parsed each field the bot reads with the values the simulator stores
# (read back through the control API), that totals and pages add up, and that a page_size of
# 101 comes back as the API's 400. Then it makes builds through the control API and reads them
# back through every build operation (sdk_conformance_builds.py). If the SDK cannot talk to the simulator, the simulator is
# wrong: it must accept and answer what the official client sends.
#
# Usage: sdk_conformance.py PATH/TO/codearts-bot. Exit 0 with a one-line summary, 1 with the
# mismatches, 2 when the simulator does not start. The simulator is always stopped. The SK is
# never printed.

import hashlib
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import urllib.request

# Loopback must never go through a proxy the environment may set.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402
from huaweicloudsdkcodeartsbuild.v3 import (  # noqa: E402
    CodeArtsBuildClient,
    ListJobRequest,
    ListProjectJobsRequest,
    ShowJobInfoRequest,
)
from sdk_conformance_builds import check_builds  # noqa: E402

JOBS = 30
PROJECTS = 3
SIM_TOKEN = "sim-token"
# Pages smaller than the projects and the whole list, so paging is really exercised.
PROJECT_PAGE = 4
LIST_PAGE = 7
# The fields the bot reads, and the Python types the SDK must have parsed them into.
BOT_FIELDS = {
    "job_name": (str,),
    "last_build_status": (str,),
    "health_score": (int,),
    "disabled": (bool,),
    "last_build_time": (int, float),
}


class Mismatch(Exception):
    """The SDK and the simulator disagree."""


def seeded_project_id(p):
    """As the simulator's seeded_project_id (docs/simulator.md, "Seeded jobs")."""
    if p == 0:
        return "5a1e2d3c4b5a69788796-a5b4c3d2e1f0"
    digest = hashlib.sha256(f"sim-project-{p}".encode()).hexdigest()[:32]
    return f"{digest[:20]}-{digest[20:]}"


def start_simulator(binary, ak, sk):
    """Starts the simulator; returns the process and its base URL (from the first stdout line).
    The rest of stdout is drained in a thread so the pipe stays open."""
    process = subprocess.Popen(
        [binary, "sim", "--listen", "127.0.0.1:0", "--jobs", str(JOBS),
         "--projects", str(PROJECTS), "--ak", ak, "--sk", sk],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    lines = queue.Queue()

    def drain():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        first = lines.get(timeout=60)
    except queue.Empty:
        first = None
    prefix = "codearts-bot sim listening on "
    if not first or not first.startswith(prefix):
        raise RuntimeError(f"the simulator did not start (first line: {first!r})")
    return process, first[len(prefix):].strip()


def stop_simulator(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def control(base, path):
    """A control-API GET (static token)."""
    request = urllib.request.Request(base + path, headers={"X-Auth-Token": SIM_TOKEN})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def client(base, ak, sk, project_id):
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.timeout = (10, 30)
    credentials = BasicCredentials(ak, sk, project_id)
    return (CodeArtsBuildClient.new_builder()
            .with_credentials(credentials)
            .with_endpoints([base])
            .with_http_config(config)
            .build())


def check_fields(problems, where, parsed, stored, with_project):
    """Compares what the SDK parsed (a model object) with the stored job."""
    fields = dict(BOT_FIELDS)
    if with_project:
        fields["project_id"] = (str,)
    for name, types in fields.items():
        value = getattr(parsed, name, None)
        expected = stored.get(name)
        if value is None or not isinstance(value, types) or (
                bool in types) != isinstance(value, bool):
            problems.append(f"{where}: {name} parsed as {value!r} ({type(value).__name__}), "
                            f"expected a {'/'.join(t.__name__ for t in types)}")
        elif value != expected:
            problems.append(f"{where}: {name} is {value!r}, the simulator stores {expected!r}")


def run(binary):
    ak = "AKCONF" + secrets.token_hex(6).upper()
    sk = secrets.token_hex(20)
    started = time.monotonic()
    try:
        process, base = start_simulator(binary, ak, sk)
    except (OSError, RuntimeError) as error:
        print(f"sdk-conformance: FAILED: {error}", file=sys.stderr)
        return 2
    problems = []
    calls = {"ShowJobInfo": 0, "ListProjectJobs": 0, "ListJob": 0}
    try:
        stored = {job["id"]: job for job in control(base, "/_sim/jobs")["jobs"]}
        projects = [seeded_project_id(p) for p in range(PROJECTS)]
        by_project = {p: sorted(i for i, j in stored.items() if j.get("project_id") == p)
                      for p in projects}
        if len(stored) != JOBS:
            raise Mismatch(f"{len(stored)} jobs stored, expected {JOBS}")
        # --projects spreads round robin: project p holds seeded jobs p, p + 3, p + 6, ...
        for p, project in enumerate(projects):
            names = sorted(stored[i].get("job_name") for i in by_project[project])
            expected = [f"sim-job-{i:04}" for i in range(p, JOBS, PROJECTS)]
            if names != expected:
                raise Mismatch(f"project {project} holds {names}, expected {expected}")

        # ShowJobInfo, every job, with each project's credentials.
        for project in projects:
            sdk = client(base, ak, sk, project)
            for job_id in by_project[project]:
                answer = sdk.show_job_info(ShowJobInfoRequest(job_id=job_id))
                calls["ShowJobInfo"] += 1
                if answer.status != "success" or answer.result is None:
                    problems.append(f"ShowJobInfo {job_id}: status {answer.status!r}")
                    continue
                check_fields(problems, f"ShowJobInfo {job_id}", answer.result, stored[job_id], True)

            # ListProjectJobs, every page (the request's project_id is the path's; the
            # credentials' goes in X-Project-Id).
            seen = []
            for index in range(JOBS):
                answer = sdk.list_project_jobs(ListProjectJobsRequest(
                    project_id=project, page_index=index, page_size=PROJECT_PAGE))
                calls["ListProjectJobs"] += 1
                if answer.total != len(by_project[project]):
                    problems.append(f"ListProjectJobs {project} page {index}: total {answer.total!r}, "
                                    f"expected {len(by_project[project])}")
                if not answer.jobs:
                    break
                for job in answer.jobs:
                    seen.append(job.id)
                    if job.id in stored:
                        check_fields(problems, f"ListProjectJobs {job.id}", job, stored[job.id], False)
            if seen != by_project[project]:
                problems.append(f"ListProjectJobs {project}: pages gave {len(seen)} ids "
                                f"({len(set(seen))} distinct), expected the {len(by_project[project])} "
                                "jobs of the project once each, in id order")

        # ListJob, every page, across projects.
        sdk = client(base, ak, sk, projects[0])
        seen = []
        for index in range(JOBS + 1):
            answer = sdk.list_job(ListJobRequest(page_index=index, page_size=LIST_PAGE))
            calls["ListJob"] += 1
            result = answer.result
            if answer.status != "success" or result is None:
                raise Mismatch(f"ListJob page {index}: status {answer.status!r}")
            if result.total != JOBS:
                problems.append(f"ListJob page {index}: total {result.total!r}, expected {JOBS}")
            if not result.job_list:
                break
            for job in result.job_list:
                seen.append(job.id)
                if job.id in stored:
                    check_fields(problems, f"ListJob {job.id}", job, stored[job.id], True)
        if seen != sorted(stored):
            problems.append(f"ListJob: pages gave {len(seen)} ids ({len(set(seen))} distinct), "
                            f"expected all {JOBS} once each, in id order")
        expected_pages = -(-JOBS // LIST_PAGE) + 1
        if calls["ListJob"] != expected_pages:
            problems.append(f"ListJob: {calls['ListJob']} pages read, expected {expected_pages}")

        # A page_size over 100 is the API's invalid parameter, parsed as such by the SDK.
        try:
            sdk.list_job(ListJobRequest(page_index=0, page_size=101))
            problems.append("ListJob page_size=101 was served; expected 400 CB.00060200")
        except ClientRequestException as error:
            if error.status_code != 400 or error.error_code != "CB.00060200":
                problems.append(f"ListJob page_size=101: {error.status_code} {error.error_code}, "
                                "expected 400 CB.00060200")
        calls["ListJob"] += 1

        # One build's operations, on jobs of the first project (the last check: it deletes a
        # job).
        check_builds(base, client(base, ak, sk, projects[0]), by_project[projects[0]], calls,
                     problems)

        # The simulator counted what the SDK sent, and accepted every signature.
        stats = control(base, "/_sim/stats")
        for name, count in calls.items():
            if stats.get("by_api", {}).get(name) != count:
                problems.append(f"by_api[{name}] is {stats.get('by_api', {}).get(name)!r}, "
                                f"the SDK made {count} calls")
        if stats.get("aksk_failures") != 0:
            problems.append(f"{stats.get('aksk_failures')} AK/SK signatures of the SDK refused")
    except ClientRequestException as error:
        problems.append(f"the SDK's call was refused: {error.status_code} {error.error_code} "
                        f"{error.error_msg}")
    except Mismatch as error:
        problems.append(str(error))
    except Exception as error:  # the SDK raises plain errors when it cannot parse an answer
        problems.append(f"the SDK failed: {type(error).__name__}: {error}")
    finally:
        stop_simulator(process)

    elapsed = time.monotonic() - started
    if problems:
        print(f"sdk-conformance: FAILED: {len(problems)} mismatches between the official SDK and "
              "the simulator:", file=sys.stderr)
        for problem in problems[:50]:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"sdk-conformance: OK: huaweicloudsdkcodeartsbuild {sdk_version()} parsed the simulator "
          f"({JOBS} jobs, {PROJECTS} projects, AK/SK-signed): ShowJobInfo x{calls['ShowJobInfo']}, "
          f"ListProjectJobs x{calls['ListProjectJobs']}, ListJob x{calls['ListJob']}, "
          f"and {sum(n for k, n in calls.items() if k not in ('ShowJobInfo', 'ListProjectJobs', 'ListJob'))} "
          f"calls of {len(calls) - 3} build operations in {elapsed:.1f}s")
    return 0


def sdk_version():
    from importlib.metadata import version
    return version("huaweicloudsdkcodeartsbuild")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: sdk_conformance.py PATH/TO/codearts-bot", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(sys.argv[1]))
