"""The model store on S3-compatible object storage (AWS S3, MinIO, R2, Ceph...), for workers on many machines.

Layout under ``s3://<bucket>/<prefix>/``, per checkpoint::

    project-3/v7/MANIFEST.json                      the commit point, written last
    project-3/v7/<attempt>/model.safetensors        the files of the upload it names:
    project-3/v7/<attempt>/config.json, tokenizer.json, ..., reward_metadata.json

The manifest is ``{"format": 1, "name", "attempt", "files": [{"path", "size",
"sha256"}]}``. S3 has no rename, so a version exists if and only if its manifest
does. ``save`` uploads every file under a fresh attempt id, then writes the
manifest with ``If-None-Match: *``: it is created once and never replaced, and
of two racing writers only one publishes. Because every upload has its own
attempt folder, the loser (or a retry) never touches the files of a published
version. A worker killed mid-upload leaves an attempt folder that no manifest
names, so no reader sees it; the next successful save of that version deletes
it. (The database already allows one active run per project, so races are
not expected; this makes them harmless rather than merely unlikely.)

Readers go through a cache, ``<MODEL_CACHE_DIR>/<bucket>/<prefix>/<name>``
(the files plus ``MANIFEST.json``): a folder there is complete and verified,
because it only ever appears by a rename, after every file matched the
manifest's size and sha256. Published versions are immutable, so a cached
folder is used without asking S3 again. The saving worker moves its own upload
into the cache and never downloads it.

Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, a profile, an instance role...). The worker needs
GetObject, PutObject, ListBucket and DeleteObject (only to clear abandoned
attempts; without it they stay, unseen).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from training.model_store import CheckpointCorrupt, CheckpointExists, CheckpointNotFound

logger = logging.getLogger(__name__)

MANIFEST_FILE = "MANIFEST.json"
MANIFEST_FORMAT = 1
_ATTEMPT = re.compile(r"[0-9a-f]{32}")


@functools.lru_cache(maxsize=8)
def s3_store(*, bucket: str, prefix: str, endpoint_url: str | None, region: str | None, cache_dir: str) -> S3Store:
    """One store (and one boto3 client, which is thread-safe) per configuration."""
    return S3Store(bucket=bucket, prefix=prefix, endpoint_url=endpoint_url, region=region, cache_dir=Path(cache_dir))


class S3Store:
    def __init__(self, *, bucket: str, prefix: str, cache_dir: Path, endpoint_url: str | None = None, region: str | None = None):
        self.bucket = bucket
        self.prefix = prefix
        self.cache_root = Path(cache_dir, bucket, *prefix.split("/")) if prefix else Path(cache_dir, bucket)
        options = {"retries": {"mode": "standard"}}
        if endpoint_url:
            options.update(
                # Virtual-hosted addressing puts the bucket in the host name, which
                # a self-hosted endpoint (http://minio:9000) does not resolve.
                s3={"addressing_style": "path"},
                # botocore >= 1.36 sends CRC checksums on every upload by default,
                # which several S3-compatible servers reject; the sha256 in the
                # manifest is what verifies the files.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
        # A session of its own: boto3's default session is not safe to share between threads.
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=Config(**options))

    def local_path(self, name: str) -> str:
        """The cached folder of ``name``, downloaded and verified first if this machine lacks it.

        Raises CheckpointNotFound when the manifest is missing, CheckpointCorrupt
        when a file does not match it (the cache is then left without the version).
        """
        target = self.cache_root / name
        if not target.is_dir():
            self._download(self._read_manifest(name), target)
        return str(target)

    def save(self, model, tokenizer, *, name: str, metadata: dict) -> None:
        """Write the checkpoint into the cache, upload it, publish the manifest, then make it visible in the cache.

        Raises CheckpointExists (before uploading anything) when ``name`` is
        already published. On any failure nothing is published, the cache holds
        nothing new, and this attempt's uploads are deleted as far as S3 allows.
        """
        from training.ml.checkpoint import save_checkpoint

        if self._manifest_exists(name):
            raise CheckpointExists(self._exists_message(name))
        target = self.cache_root / name
        # Unpublished, yet cached: left from a bucket that was emptied while
        # this cache was kept. It is not this version, so it goes.
        _discard(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".upload-{target.name}-", dir=target.parent))
        attempt = uuid.uuid4().hex
        try:
            folder = save_checkpoint(model, tokenizer, staging / "checkpoint", metadata)
            try:
                manifest = self._upload(name, attempt, folder)
                self._publish(manifest)
            except BaseException:
                self._abandon(name, attempt)
                raise
            # Published: every other attempt folder of this version is abandoned.
            self._delete_under(self._key(name) + "/", keep=(self._key(name, MANIFEST_FILE), self._key(name, attempt) + "/"))
            _write_manifest(folder, manifest)
            _move_into_cache(folder, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _key(self, name: str, *relative: str) -> str:
        return "/".join(part for part in (self.prefix, name, *relative) if part)

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _exists_message(self, name: str) -> str:
        return (
            f"Checkpoint {name!r} is already published ({self._url(self._key(name, MANIFEST_FILE))} exists); "
            "checkpoints are immutable, save under a new version."
        )

    def _manifest_exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(name, MANIFEST_FILE))
        except ClientError as error:
            if _status(error) == 404:
                return False
            raise
        return True

    def _read_manifest(self, name: str) -> dict:
        key = self._key(name, MANIFEST_FILE)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchKey":
                raise CheckpointNotFound(
                    f"Checkpoint {name!r} is not in the model store: {self._url(key)} does not exist "
                    "(never saved, or its upload did not finish)."
                ) from None
            raise
        return _parse_manifest(body, name=name, where=self._url(key))

    def _upload(self, name: str, attempt: str, folder: Path) -> dict:
        files = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(folder).as_posix()
            size, sha256 = _digest(path)
            # upload_file switches to parallel multipart uploads for large files.
            self.client.upload_file(str(path), self.bucket, self._key(name, attempt, relative))
            files.append({"path": relative, "size": size, "sha256": sha256})
        return {"format": MANIFEST_FORMAT, "name": name, "attempt": attempt, "files": files}

    def _publish(self, manifest: dict) -> None:
        name = manifest["name"]
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(name, MANIFEST_FILE),
                Body=_manifest_bytes(manifest),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if _status(error) != 412:
                raise
            # botocore retries a request that timed out: if the first try landed, the manifest is this one.
            if self._published_attempt(name) != manifest["attempt"]:
                raise CheckpointExists(self._exists_message(name)) from None

    def _published_attempt(self, name: str) -> str | None:
        try:
            return self._read_manifest(name)["attempt"]
        except CheckpointNotFound:
            return None

    def _abandon(self, name: str, attempt: str) -> None:
        """Delete a failed attempt's uploads, unless a manifest names it after all (a publish whose reply was lost)."""
        try:
            published = self._published_attempt(name)
        except (BotoCoreError, ClientError, CheckpointCorrupt) as error:
            logger.warning("Leaving the uploads of %s attempt %s in place: %s", name, attempt, error)
            return
        if published != attempt:
            self._delete_under(self._key(name, attempt) + "/")

    def _download(self, manifest: dict, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".download-{target.name}-", dir=target.parent))
        try:
            for entry in manifest["files"]:
                path = temporary / entry["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                key = self._key(manifest["name"], manifest["attempt"], entry["path"])
                self.client.download_file(self.bucket, key, str(path))
                size, sha256 = _digest(path, sync=True)
                if (size, sha256) != (entry["size"], entry["sha256"]):
                    raise CheckpointCorrupt(
                        f"{self._url(key)} downloaded as {size} bytes with sha256 {sha256}, but its manifest "
                        f"records {entry['size']} bytes with sha256 {entry['sha256']}; the checkpoint was not cached."
                    )
            _write_manifest(temporary, manifest)
            # mkdtemp makes the folder private (0700); other users on this machine read the cache too.
            temporary.chmod(0o755)
            _move_into_cache(temporary, target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def _delete_under(self, prefix: str, *, keep: tuple[str, ...] = ()) -> None:
        """Delete the keys under ``prefix`` that start with none of ``keep``. Best effort: a failure is logged."""
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                doomed = [{"Key": item["Key"]} for item in page.get("Contents", ()) if not item["Key"].startswith(keep)]
                if doomed:  # a listing page holds at most 1000 keys, as many as one DeleteObjects takes
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed, "Quiet": True})
        except (BotoCoreError, ClientError) as error:
            logger.warning("Could not delete unpublished uploads under %s: %s", self._url(prefix), error)


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _digest(path: Path, *, sync: bool = False) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file; ``sync`` also flushes it to disk before it is renamed into the cache."""
    with open(path, "rb") as handle:
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        if sync:
            os.fsync(handle.fileno())
        return os.fstat(handle.fileno()).st_size, sha256


def _manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _write_manifest(folder: Path, manifest: dict) -> None:
    # The cached folder keeps its manifest: it says where the files came from and what they hash to.
    (folder / MANIFEST_FILE).write_bytes(_manifest_bytes(manifest))


def _parse_manifest(body: bytes, *, name: str, where: str) -> dict:
    try:
        manifest = json.loads(body)
        valid = (
            manifest["format"] == MANIFEST_FORMAT
            and manifest["name"] == name
            and _ATTEMPT.fullmatch(manifest["attempt"]) is not None
            and all(_valid_entry(entry) for entry in manifest["files"])
        )
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise CheckpointCorrupt(f"{where} is not a valid format-{MANIFEST_FORMAT} manifest of checkpoint {name!r}.")
    return manifest


def _valid_entry(entry: dict) -> bool:
    # The manifest comes over the network: its paths must stay inside the checkpoint folder.
    path = PurePosixPath(entry["path"])
    return (
        bool(path.parts)
        and not path.is_absolute()
        and ".." not in path.parts
        and path.name != MANIFEST_FILE
        and isinstance(entry["size"], int)
        and isinstance(entry["sha256"], str)
    )


def _move_into_cache(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:
        if not target.is_dir():
            raise
        # Another process on this machine cached the same published version
        # first; published versions never change, so theirs is as good.


def _discard(folder: Path) -> None:
    """Remove a cached folder; renamed aside first, so no reader sees it half deleted."""
    if not folder.is_dir():
        return
    aside = Path(tempfile.mkdtemp(prefix=f".discard-{folder.name}-", dir=folder.parent))
    os.replace(folder, aside / folder.name)
    shutil.rmtree(aside, ignore_errors=True)
