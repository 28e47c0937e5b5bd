#!/usr/bin/env python3
# sdk_poll_loop.py: what a team's own script would do instead of the bot: poll every job once
# with the official Python SDK (huaweicloudsdkcodeartsbuild), ShowJobInfo after ShowJobInfo, as
# the SDK's examples do. `codearts-bot bench --modes` runs it inside target/sdk-venv (made by
# scripts/sdk-conformance) against the same simulator and jobs as the bot, and reports its wall
# time next to the bot's poll modes (docs/benchmarks.md, "Poll modes").
#
# Usage: sdk_poll_loop.py BASE_URL JOB_IDS_FILE. The AK/SK come from the environment
# (SDK_LOOP_AK, SDK_LOOP_SK) so they never appear in a process listing. Prints one JSON line:
# {"jobs": n, "failed": k, "wall_s": x}. Exit 0, or 2 when the SDK is missing.

import json
import os
import sys
import time

# Loopback must never go through a proxy the environment may set.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

try:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import SdkException
    from huaweicloudsdkcore.http.http_config import HttpConfig
    from huaweicloudsdkcodeartsbuild.v3 import CodeArtsBuildClient, ShowJobInfoRequest
except ImportError as e:
    print(f"the official SDK is not installed here ({e}): run scripts/sdk-conformance first",
          file=sys.stderr)
    sys.exit(2)


def main():
    base, ids_file = sys.argv[1], sys.argv[2]
    with open(ids_file, encoding="utf-8") as f:
        ids = [line.strip() for line in f if line.strip()]
    config = HttpConfig.get_default_config()
    config.timeout = (10, 30)
    credentials = BasicCredentials(os.environ["SDK_LOOP_AK"], os.environ["SDK_LOOP_SK"])
    client = (CodeArtsBuildClient.new_builder()
              .with_credentials(credentials)
              .with_endpoints([base])
              .with_http_config(config)
              .build())
    # One warm-up call, so the connection pool and the SDK's lazy set-up are not measured.
    client.show_job_info(ShowJobInfoRequest(job_id=ids[0]))
    failed = 0
    started = time.monotonic()
    for job_id in ids:
        try:
            client.show_job_info(ShowJobInfoRequest(job_id=job_id))
        except SdkException:
            failed += 1
    wall = time.monotonic() - started
    print(json.dumps({"jobs": len(ids), "failed": failed, "wall_s": round(wall, 3)}))


if __name__ == "__main__":
    main()
