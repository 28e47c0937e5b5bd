# sdk_conformance_builds.py: the build operations of scripts/sdk_conformance.py.
#
# Makes builds through the simulator's control API (POST /_sim/jobs/{id}/builds), then reads
# them back through the official SDK: ShowRunningStatus, ShowJobBuildRecordDetail,
# ShowBuildInfoRecord, ShowBuildRecordFullStages, DownloadBuildRealTimeLog (DESC tail and an
# ASC window), ShowReportSummary, ListBuildParameter, ShowDisable, ListRecyclingJob (after a
# control-API delete), ExecuteJob and StopTheJob; and checks that the SDK parsed every field
# the bot reads, with the type the SDK declares and the value the control API set. A field the
# SDK cannot read means the simulator is wrong.

import json
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
    simulator at `base`; `jobs` are at least four job ids; counts the calls in `calls`."""
    for name in OPERATIONS:
        calls.setdefault(name, 0)
    check = Checker(problems)
    failed_job, green_job, run_job, doomed_job = jobs[:4]

    def call(name, method, request):
        calls[name] += 1
        return method(request)

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
