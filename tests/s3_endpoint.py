"""A real S3 endpoint for the tests: moto's server on a free loopback port, with one bucket."""

from __future__ import annotations

import contextlib

import pyarrow.fs as pafs
from moto.server import ThreadedMotoServer
from private_ray import free_port

BUCKET, KEY, REGION = "evalpipe", "testing", "us-east-1"
SECRET = "s3cr3t-Zq9XbW7"  # distinctive, so a test can grep every output for it (moto accepts any)


class S3:
    """The endpoint: a filesystem to look with, URIs that carry their options, and the AWS_* variables."""

    def __init__(self, port: int, filesystem: pafs.S3FileSystem):
        self.port, self.fs = port, filesystem

    @classmethod
    @contextlib.contextmanager
    def serving(cls):
        """Start the server and make the bucket; stop it after the block."""
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            filesystem = pafs.S3FileSystem(access_key=KEY, secret_key=SECRET, region=REGION, scheme="http",
                                           endpoint_override=f"127.0.0.1:{port}", allow_bucket_creation=True)
            filesystem.create_dir(BUCKET)
            yield cls(port, filesystem)
        finally:
            server.stop()

    def uri(self, key: str) -> str:
        """An s3:// URI that holds everything needed to reach the endpoint (for an already-running Ray)."""
        return (f"s3://{KEY}:{SECRET}@{BUCKET}/{key}"
                f"?endpoint_override=127.0.0.1:{self.port}&scheme=http&region={REGION}")

    def env(self) -> dict:
        return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}", "AWS_ACCESS_KEY_ID": KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}

    def put(self, key: str, local_path) -> None:
        pafs.copy_files(str(local_path), f"{BUCKET}/{key}", destination_filesystem=self.fs)

    def keys(self, prefix: str) -> list[str]:
        listing = self.fs.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True))
        return sorted(i.path.split("/", 1)[1] for i in listing if i.type == pafs.FileType.File)

    def read(self, key: str) -> bytes:
        with self.fs.open_input_stream(f"{BUCKET}/{key}") as stream:
            return stream.read()
