"""Inputs, staging, outputs and run folders on an object store: S3 served by ``moto_server`` on
127.0.0.1 (started and stopped by the test, by PID). The job reads its inputs with
``FileSystems.match`` / seekable ``FileSystems.open``, the blocks write their parts to S3 and
the merge reads them back through ``FileSystems``; publishing uploads the release
under its run id and writes the ``CURRENT`` pointer last."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import SMALL_BLOCK, free_port, output_digests, stop, wait_for_port

BUCKET = "ikou-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(beam_args, boto3 client) for a fresh moto S3 server."""
    import subprocess

    mp = pytest.MonkeyPatch()
    for key, value in {"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       # google-auth must never probe a metadata server
                       "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1",
                       "GCE_METADATA_IP": "127.0.0.1"}.items():
        mp.setenv(key, value)
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")),
                               "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        import boto3

        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        args = [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=testing",
                "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"]
        from ikou.transforms import fileio

        fileio.set_options(args)
        yield args, client
    finally:
        stop(server)
        mp.undo()


def _keys(client, prefix: str) -> list[str]:
    got = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in got.get("Contents", []))


@pytest.fixture(scope="module")
def s3_job(s3, small_town, tmp_path_factory):
    """The small town's inputs uploaded to S3 and a job naming them (one by a pattern)."""
    args, client = s3
    folder = tmp_path_factory.mktemp("s3-job") / "town"
    shutil.copytree(small_town, folder)
    text = (folder / "job.yaml").read_text(encoding="utf-8")
    for dat in sorted(folder.glob("*.dat")):
        client.upload_file(str(dat), BUCKET, f"in/{dat.name}")
        url = f"s3://{BUCKET}/in/{dat.name}"
        text = text.replace(f"inputs: [{dat.name}]",
                            f"inputs: ['{url.replace('juki.dat', 'juk?.dat')}']")
        dat.unlink()  # nothing local to fall back on
    (folder / "job.yaml").write_text(text, encoding="utf-8")
    return folder / "job.yaml"


def test_a_job_runs_from_and_publishes_to_s3(s3, s3_job, small_reference, capsys):
    from ikou.pipeline.cli import main
    from ikou.pipeline.steps.publish import read_current

    args, client = s3
    _, reference = small_reference
    root = f"s3://{BUCKET}/out"
    rc = main(["run", str(s3_job), "--out", root, "--block_size", str(2 * SMALL_BLOCK), *args])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    m = json.loads(client.get_object(Bucket=BUCKET, Key=[
        k for k in _keys(client, "out/runs/") if k.endswith("/manifest.json")][0])["Body"].read())
    assert f"published       {root}/CURRENT -> {root}/releases/{m['job']['run_id']}" in printed
    assert [i["path"] for i in m["inputs"]][0] == f"s3://{BUCKET}/in/juki.dat"
    assert [i["sha256"] for i in m["inputs"]] == [i["sha256"] for i in reference["inputs"]]
    assert output_digests(m) == output_digests(reference)  # the same bytes as a local run
    juki = next(i for i in m["inputs"] if i["source"] == "juki")
    assert juki["blocks"] > 1  # planned from the object's size, read by byte range
    release, published = read_current(root)  # a reader: pointer, manifest, every sha256
    assert release == f"{root}/releases/{m['job']['run_id']}"
    assert output_digests(published) == output_digests(reference)
    head = json.loads(client.get_object(Bucket=BUCKET, Key="out/CURRENT")["Body"].read())
    assert head["run_id"] == m["job"]["run_id"]
    keys = _keys(client, "out/")
    assert not [k for k in keys if "/.staging-" in k]  # staging (parts included) removed
    assert f"out/runs/{m['job']['run_id']}/manifest.json" in keys
    assert f"out/runs/{m['job']['run_id']}/summary.json" in keys


def test_readers_refuse_a_tampered_release_and_stale_objects_are_removed(s3, small_reference):
    from ikou.pipeline.steps.publish import ObjectStoreOutput, ReleaseError, read_current

    _, client = s3
    root = f"s3://{BUCKET}/out"
    current = ObjectStoreOutput(root).current_run_id()
    assert current is not None  # published by the test above
    # what killed runs leave: a staging prefix, a release uploaded but never made CURRENT
    client.put_object(Bucket=BUCKET, Key="out/releases/.staging-20990101T000000.0Z/parts/a",
                      Body=b"x")
    client.put_object(Bucket=BUCKET, Key="out/releases/20990101T000000.0Z/juki.arrow",
                      Body=b"half")
    removed = ObjectStoreOutput(root).clean_stale()
    assert removed == ["releases/.staging-20990101T000000.0Z", "releases/20990101T000000.0Z"]
    assert read_current(root)[1]["job"]["run_id"] == current
    key = f"out/releases/{current}/juki.arrow"
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(ReleaseError, match="juki.arrow: sha256 differs"):
        read_current(root)
    client.put_object(Bucket=BUCKET, Key=key, Body=body)
    client.put_object(Bucket=BUCKET, Key=f"out/releases/{current}/extra.arrow", Body=b"")
    with pytest.raises(ReleaseError, match="do not match the manifest"):
        read_current(root)
    client.delete_object(Bucket=BUCKET, Key=f"out/releases/{current}/extra.arrow")
    assert read_current(root)[0].endswith(current)
