# sdk_conformance_builds.py: the build operations of scripts/sdk_conformance.py.
#
# Makes builds through the simulator's control API (POST /_sim/jobs/{id}/builds), then reads
# them back through the official SDK: ShowRunningStatus, ShowJobBuildRecordDetail,
# ShowBuildInfoRecord, ShowBuildRecordFullStages, DownloadBuildRealTimeLog (DESC tail and an
# ASC window), ShowReportSummary, ListBuildParameter, ShowDisable, ListRecyclingJob (after a
# control-API delete), ExecuteJob and StopTheJob; and checks that the SDK parsed every field
# the bot reads, with the type the SDK declares and the value the control API set. A field the
# SDK cannot read means the simulator is wrong.
#
# Then issue #15's contract for executed builds (check_execution): the `_sim_build_ms` and
# `_sim_next_result` flags set through the control API decide how long an ExecuteJob build
# runs and how it ends; ShowRunningStatus and ShowJobInfo say it runs, then show its outcome;
# StopTheJob aborts a long one; ListBuildParameter answers the parameters it ran with.

import json
import time
import urllib.request

from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcodeartsbuild.v3 import (
    DownloadBuildRealTimeLogRequest,
    ExecuteJobRequest,
    ListBuildParameterRequest,
    ListRecyclingJobRequest,
    ParameterItem,
    RunJobRequestBody,
    Scm,
    ShowBuildInfoRecordRequest,
    ShowBuildRecordFullStagesRequest,
    ShowDisableRequest,
    ShowJobBuildRecordDetailRequest,
    ShowJobInfoRequest,
    ShowReportSummaryRequest,
    ShowRunningStatusRequest,
    StopTheJobRequest,
)

SIM_TOKEN = "sim-token"
COMMIT = "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a"
LOG = [f"[INFO] step {i}" for i in range(9)] + ['[ERROR] Stage "Unit tests" failed: exit code 1']
FAILED_BUILD = {
    "status": "failed",
    "branch": "feature/checkout",
    "commit": COMMIT,
    "commit_message": "checkout: retry the payment call",
    "user": "alice",
    "trigger_type": "Push",
    "stages": [
        {"name": "Install", "status": "success", "duration_ms": 4000},
        {"name": "Unit tests", "status": "failed", "duration_ms": 2500},
        {"name": "Package", "status": "skipped", "duration_ms": 0},
    ],
    "log": "\n".join(LOG),
    "tests": {"total": 120, "failures": 2, "errors": 0},
    "err_msg": "Command exited with code 1 in stage Unit tests",
    "parameters": [{"name": "codeBranch", "value": "feature/checkout"}],
}
OPERATIONS = [
    "ShowRunningStatus", "ShowJobBuildRecordDetail", "ShowBuildInfoRecord",
    "ShowBuildRecordFullStages", "DownloadBuildRealTimeLog", "ShowReportSummary",
    "ListBuildParameter", "ShowDisable", "ListRecyclingJob", "ExecuteJob", "StopTheJob",
]
# How long the flagged build runs (ms), and how long to wait for it at most (s).
FLAGGED_BUILD_MS = 300
FLAGGED_WAIT_S = 10
RUN_PARAMETERS = [("release", "2.0.0"), ("env", "staging")]


def control_send(base, method, path, body=None):
    """A control-API call with a JSON body (static token); the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"X-Auth-Token": SIM_TOKEN,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


class Checker:
    """Collects the mismatches of one run."""

    def __init__(self, problems):
        self.problems = problems

    def field(self, where, obj, name, types, expected=None):
        """`obj.name` was parsed, with one of `types` (bool and int told apart), and equals
        `expected` when one is given."""
        value = getattr(obj, name, None) if obj is not None else None
        if value is None or type(value) not in types:
            self.problems.append(f"{where}: {name} parsed as {value!r} ({type(value).__name__}), "
                                 f"expected a {'/'.join(t.__name__ for t in types)}")
        elif expected is not None and value != expected:
            self.problems.append(f"{where}: {name} is {value!r}, expected {expected!r}")
        return value

    def true(self, where, condition, what):
        if not condition:
            self.problems.append(f"{where}: {what}")


def check_builds(base, sdk, jobs, calls, problems):
    """Runs every build operation through `sdk` (a CodeArtsBuildClient) against jobs of the
    simulator at `base`; `jobs` are at least five job ids; counts the calls in `calls`."""
    for name in OPERATIONS:
        calls.setdefault(name, 0)
    check = Checker(problems)
    failed_job, green_job, run_job, doomed_job, flagged_job = jobs[:5]

    def call(name, method, request):
        calls[name] += 1
        return method(request)

    check_execution(base, sdk, flagged_job, call, check)

    created = control_send(base, "POST", f"/_sim/jobs/{failed_job}/builds", FAILED_BUILD)
    record_id = created["record_id"]
    control_send(base, "POST", f"/_sim/jobs/{green_job}/builds", {})

    # ShowRunningStatus: the build number as a string, booleans as booleans.
    answer = call("ShowRunningStatus", sdk.show_running_status,
                  ShowRunningStatusRequest(job_id=failed_job))
    where = f"ShowRunningStatus {failed_job}"
    check.field(where, answer.result, "last_build_no", [str], str(created["build_no"]))
    check.field(where, answer.result, "last_build_status", [str], "failed")
    check.field(where, answer.result, "is_running", [bool], False)

    # ShowJobBuildRecordDetail ("record-info").
    answer = call("ShowJobBuildRecordDetail", sdk.show_job_build_record_detail,
                  ShowJobBuildRecordDetailRequest(job_id=failed_job, build_no=1))
    where = f"ShowJobBuildRecordDetail {failed_job}/1"
    result = answer.result
    check.field(where, result, "build_record_id", [str], record_id)
    check.field(where, result, "build_no", [int], 1)
    for name in ["branch", "commit", "commit_message", "trigger_type", "status", "err_msg"]:
        check.field(where, result, name, [str], FAILED_BUILD[name])
    check.field(where, result, "duration", [int], 6500)
    check.field(where, result, "user_id", [str])
    start = check.field(where, result, "start_time", [str])
    check.true(where, isinstance(start, str) and start.isdigit(), f"start_time {start!r} is not ms")

    # ShowBuildInfoRecord: who ran it, the commit's link.
    answer = call("ShowBuildInfoRecord", sdk.show_build_info_record,
                  ShowBuildInfoRecordRequest(job_id=failed_job, build_no=1))
    where = f"ShowBuildInfoRecord {failed_job}/1"
    result = answer.result
    check.field(where, result, "executor", [str], "alice")
    check.field(where, result, "nickname", [str], "alice")
    check.field(where, result, "number", [int], 1)
    check.field(where, result, "cost_time", [int], 6500)
    check.field(where, result, "start_time", [int])
    url = check.field(where, result, "commit_detail_url", [str])
    check.true(where, isinstance(url, str) and url.endswith(COMMIT), f"commit_detail_url {url!r}")
    check.true(where, result is not None and result.commit_info is not None
               and result.commit_info.commit_id == COMMIT, "commit_info.commit_id")

    # ShowBuildRecordFullStages: a dict of stages, in sequence.
    answer = call("ShowBuildRecordFullStages", sdk.show_build_record_full_stages,
                  ShowBuildRecordFullStagesRequest(record_id=record_id))
    where = f"ShowBuildRecordFullStages {record_id}"
    stages = answer.result.build_stages if answer.result is not None else None
    check.true(where, isinstance(stages, dict) and len(stages) == 3, f"build_stages {stages!r}")
    if isinstance(stages, dict):
        ordered = sorted(stages.values(), key=lambda s: s.sequence or 0)
        for stage in ordered:
            check.field(where, stage, "display_name", [str])
            check.field(where, stage, "status", [str])
            check.field(where, stage, "sequence", [int])
            check.field(where, stage, "duration", [int])
        names = [s.display_name for s in ordered]
        check.true(where, names == ["Install", "Unit tests", "Package"], f"stages {names}")
        failed = next((s for s in ordered if s.status == "failed"), None)
        check.true(where, failed is not None and failed.display_name == "Unit tests"
                   and failed.duration == 2500, "the failed stage is Unit tests, 2500 ms")

    # DownloadBuildRealTimeLog: the tail with DESC, then a window from the start.
    answer = call("DownloadBuildRealTimeLog", sdk.download_build_real_time_log,
                  DownloadBuildRealTimeLogRequest(job_id=failed_job, build_no=1, sort="DESC",
                                                  size="3"))
    where = f"DownloadBuildRealTimeLog {failed_job}/1 DESC"
    check.field(where, answer.result, "log", [str], "\n".join(LOG[-3:]))
    check.field(where, answer.result, "has_more", [bool], True)
    check.field(where, answer.result, "start_offset", [str], str(len(LOG) - 3))
    check.field(where, answer.result, "end_offset", [str], str(len(LOG)))
    answer = call("DownloadBuildRealTimeLog", sdk.download_build_real_time_log,
                  DownloadBuildRealTimeLogRequest(job_id=failed_job, build_no=1, start_offset=0,
                                                  end_offset=2, sort="ASC"))
    where = f"DownloadBuildRealTimeLog {failed_job}/1 ASC 0..2"
    check.field(where, answer.result, "log", [str], "\n".join(LOG[:2]))
    check.field(where, answer.result, "has_more", [bool], True)

    # ShowReportSummary: the counts, and none for a build without tests.
    answer = call("ShowReportSummary", sdk.show_report_summary,
                  ShowReportSummaryRequest(job_id=failed_job, build_no=1))
    where = f"ShowReportSummary {failed_job}/1"
    summary = answer.result.summary if answer.result is not None else None
    check.field(where, summary, "total", [int], 120)
    check.field(where, summary, "failures", [int], 2)
    check.field(where, summary, "errors", [int], 0)
    check.field(where, summary, "success", [int], 118)
    check.field(where, summary, "is_success", [bool], False)
    check.field(where, summary, "stage_name", [str], "Unit tests")
    answer = call("ShowReportSummary", sdk.show_report_summary,
                  ShowReportSummaryRequest(job_id=green_job, build_no=1))
    check.true(f"ShowReportSummary {green_job}/1",
               answer.result is not None and answer.result.summary is None,
               "a build without tests has no summary")

    # ListBuildParameter.
    answer = call("ListBuildParameter", sdk.list_build_parameter,
                  ListBuildParameterRequest(job_id=failed_job, build_no=1))
    where = f"ListBuildParameter {failed_job}/1"
    params = answer.result or []
    check.true(where, len(params) == 1, f"{len(params)} parameters")
    for param in params:
        check.field(where, param, "name", [str], "codeBranch")
        check.field(where, param, "value", [str], "feature/checkout")

    # ShowDisable: disabled is an int, forbidden_time a float.
    control_send(base, "PUT", f"/_sim/jobs/{failed_job}",
                 {"disabled": True, "_sim_disabled_by": "carol",
                  "_sim_disabled_reason": "flaky until staging is back"})
    answer = call("ShowDisable", sdk.show_disable, ShowDisableRequest(job_id=failed_job))
    where = f"ShowDisable {failed_job}"
    check.field(where, answer.result, "disabled", [int], 1)
    check.field(where, answer.result, "forbiddener", [str], "carol")
    check.field(where, answer.result, "reson", [str], "flaky until staging is back")
    check.field(where, answer.result, "forbidden_time", [float])

    # ExecuteJob (signed body) then StopTheJob.
    control_send(base, "PUT", f"/_sim/jobs/{run_job}",
                 {"_sim_next_build": {"duration_ms": 600000}})
    body = RunJobRequestBody(job_id=run_job,
                             parameter=[ParameterItem(name="release", value="1.4.0")],
                             scm=Scm(build_commit_id=COMMIT))
    answer = call("ExecuteJob", sdk.execute_job, ExecuteJobRequest(body=body))
    where = f"ExecuteJob {run_job}"
    check.field(where, answer, "actual_build_number", [str], "1")
    check.field(where, answer, "daily_build_number", [str])
    builds = control_send(base, "GET", f"/_sim/jobs/{run_job}/builds")["builds"]
    check.true(where, builds and builds[0]["commit"] == COMMIT and builds[0]["status"] == "running"
               and builds[0]["parameters"] == [{"name": "release", "value": "1.4.0"}],
               f"the simulator made {builds!r}")
    answer = call("StopTheJob", sdk.stop_the_job, StopTheJobRequest(job_id=run_job, build_no=1))
    check.field(f"StopTheJob {run_job}/1", answer, "status", [str], "success")
    answer = call("ShowRunningStatus", sdk.show_running_status,
                  ShowRunningStatusRequest(job_id=run_job))
    check.field(f"ShowRunningStatus {run_job}", answer.result, "last_build_status", [str],
                "aborted")

    # ListRecyclingJob after a delete.
    control_send(base, "DELETE", f"/_sim/jobs/{doomed_job}")
    answer = call("ListRecyclingJob", sdk.list_recycling_job,
                  ListRecyclingJobRequest(page_no=1, page_size=10))
    where = "ListRecyclingJob"
    check.field(where, answer, "success", [bool], True)
    check.field(where, answer.result, "total", [int], 1)
    check.field(where, answer.result, "keep_time", [int])
    listed = (answer.result.job_list if answer.result is not None else None) or []
    check.true(where, len(listed) == 1, f"{len(listed)} jobs in the bin")
    for job in listed:
        check.field(where, job, "job_id", [str], doomed_job)
        check.field(where, job, "job_name", [str])
        stamp = check.field(where, job, "delete_time_stamp", [str])
        check.true(where, isinstance(stamp, str) and stamp.isdigit(), f"delete_time_stamp {stamp!r}")

    # A build that does not exist is the API's 404, as the SDK reads it.
    try:
        call("ShowJobBuildRecordDetail", sdk.show_job_build_record_detail,
             ShowJobBuildRecordDetailRequest(job_id=failed_job, build_no=99))
        problems.append("record-info of build 99 was served; expected 404 CB.00060214")
    except ClientRequestException as error:
        if error.status_code != 404 or error.error_code != "CB.00060214":
            problems.append(f"record-info of build 99: {error.status_code} {error.error_code}, "
                            "expected 404 CB.00060214")


def check_execution(base, sdk, job, call, check):
    """Issue #15's contract, through the SDK: a build executed with `_sim_build_ms` and
    `_sim_next_result` set runs, then ends as flagged; a long one is aborted by StopTheJob."""
    flags = control_send(base, "PUT", f"/_sim/jobs/{job}",
                         {"_sim_build_ms": FLAGGED_BUILD_MS, "_sim_next_result": "failed"})
    check.true(f"PUT /_sim/jobs/{job}", flags.get("_sim_build_ms") == FLAGGED_BUILD_MS
               and flags.get("_sim_next_result") == "failed", f"the flags are not shown: {flags!r}")
    body = RunJobRequestBody(job_id=job,
                             parameter=[ParameterItem(name=n, value=v) for n, v in RUN_PARAMETERS],
                             scm=Scm(build_commit_id=COMMIT))
    answer = call("ExecuteJob", sdk.execute_job, ExecuteJobRequest(body=body))
    check.field(f"ExecuteJob {job}", answer, "actual_build_number", [str], "1")
    running_status(sdk, job, call, check, "1", "running", True)
    answer = call("ShowJobInfo", sdk.show_job_info, ShowJobInfoRequest(job_id=job))
    where = f"ShowJobInfo {job} (running)"
    check.field(where, answer.result, "running_status", [str], "Running")
    check.field(where, answer.result, "last_build_status", [str], "running")
    started = check.field(where, answer.result, "last_build_time", [int])

    # It ends after about FLAGGED_BUILD_MS, as `_sim_next_result` says.
    time.sleep(FLAGGED_BUILD_MS / 1000 + 0.2)
    deadline = time.monotonic() + FLAGGED_WAIT_S
    while True:
        answer = call("ShowRunningStatus", sdk.show_running_status,
                      ShowRunningStatusRequest(job_id=job))
        if answer.result is None or answer.result.is_running is not True:
            break
        if time.monotonic() > deadline:
            check.true(f"ShowRunningStatus {job}", False, f"still running after {FLAGGED_WAIT_S}s")
            return
        time.sleep(0.05)
    running_status(sdk, job, call, check, "1", "failed", False)
    answer = call("ShowJobInfo", sdk.show_job_info, ShowJobInfoRequest(job_id=job))
    where = f"ShowJobInfo {job} (ended)"
    check.field(where, answer.result, "running_status", [str], "Finished")
    check.field(where, answer.result, "last_build_status", [str], "failed")
    check.field(where, answer.result, "last_build_time", [int], started)
    answer = call("ShowJobBuildRecordDetail", sdk.show_job_build_record_detail,
                  ShowJobBuildRecordDetailRequest(job_id=job, build_no=1))
    where = f"ShowJobBuildRecordDetail {job}/1"
    check.field(where, answer.result, "status", [str], "failed")
    check.field(where, answer.result, "commit", [str], COMMIT)
    check.field(where, answer.result, "err_msg", [str],
                "Command exited with code 1 in stage Build")
    duration = check.field(where, answer.result, "duration", [int])
    check.true(where, isinstance(duration, int) and FLAGGED_BUILD_MS <= duration < 2000,
               f"ran {duration!r} ms, expected about {FLAGGED_BUILD_MS}")
    answer = call("ListBuildParameter", sdk.list_build_parameter,
                  ListBuildParameterRequest(job_id=job, build_no=1))
    ran_with = [(p.name, p.value) for p in answer.result or []]
    check.true(f"ListBuildParameter {job}/1", ran_with == RUN_PARAMETERS,
               f"parameters {ran_with!r}, expected {RUN_PARAMETERS!r}")

    # A long build is aborted by StopTheJob, whatever `_sim_next_result` says.
    control_send(base, "PUT", f"/_sim/jobs/{job}", {"_sim_build_ms": 600000})
    answer = call("ExecuteJob", sdk.execute_job,
                  ExecuteJobRequest(body=RunJobRequestBody(job_id=job)))
    check.field(f"ExecuteJob {job} (long)", answer, "actual_build_number", [str], "2")
    running_status(sdk, job, call, check, "2", "running", True)
    answer = call("StopTheJob", sdk.stop_the_job, StopTheJobRequest(job_id=job, build_no=2))
    check.field(f"StopTheJob {job}/2", answer, "status", [str], "success")
    running_status(sdk, job, call, check, "2", "aborted", False)

    # `null` clears the flags back to the defaults.
    flags = control_send(base, "PUT", f"/_sim/jobs/{job}",
                         {"_sim_build_ms": None, "_sim_next_result": None})
    check.true(f"PUT /_sim/jobs/{job}", "_sim_build_ms" not in flags
               and "_sim_next_result" not in flags, f"the flags were not cleared: {flags!r}")


def running_status(sdk, job, call, check, build_no, status, is_running):
    """ShowRunningStatus of `job` says build `build_no` has `status` and runs or not."""
    answer = call("ShowRunningStatus", sdk.show_running_status,
                  ShowRunningStatusRequest(job_id=job))
    where = f"ShowRunningStatus {job} (build {build_no}, {status})"
    check.field(where, answer.result, "last_build_no", [str], build_no)
    check.field(where, answer.result, "last_build_status", [str], status)
    check.field(where, answer.result, "is_running", [bool], is_running)
