"""Run one phase in a Docker container, held to its limits, and report what happened."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount as DockerMount

from harness.limits import PhaseVerdict
from harness.limits.cgroups import ContainerCgroup, RunCgroup, Usage
from harness.limits.docker_options import container_options, runtime_problem
from harness.limits.gpu import GpuWatch, NvmlError, load_nvml
from harness.limits.gpu.toolkit import Toolkit, find_toolkit
from harness.limits.judge import Observation, judge
from harness.limits.local_container import ContainerInit
from harness.limits.output_watch import OutputUsage, OutputWatch, host_disk_full
from harness.limits.telemetry import Telemetry
from harness.runner.backend import EngineError, ImageFacts
from harness.runner.engine import connect
from harness.runner.gpus import assignment_problem, container_pids, device_requests, gpu_environment, gpu_figures, gpu_watch
from harness.runner.host import engine_facts, host_info
from harness.runner.image_faults import (
    RESERVED_LABEL_PREFIX,
    exec_failure_after_start,
    gpu_start_failure,
    start_failure,
    volume_mounts,
    volume_problem,
)
from harness.runner.logs import BoundedLog, LiveLogs
from harness.runner.phase import PhaseResult, PhaseSpec
from harness.runner.stats import StatsSampler

POLL_S = 0.05
# The uid:gid a container runs as when the harness runs as root; otherwise the caller's own.
CONTAINER_UID = 10001
LABEL = "harness.run"


class _StartRefused(Exception):
    """The engine answered, refusing to start the container, for a reason no rule blames on the image."""


class _ImageFault(Exception):
    """The image, not the node, kept the phase from starting: the submission's RUNTIME_ERROR."""


_INFRA_ERRORS = (docker.errors.APIError, docker.errors.DockerException, requests.exceptions.RequestException, OSError, NvmlError)


def container_user() -> tuple[int, int]:
    if os.geteuid() == 0:
        return CONTAINER_UID, CONTAINER_UID
    return os.getuid(), os.getgid()


def make_writable_dir(path: Path) -> None:
    """An empty directory that only the container's user (and the harness) may write."""
    path.mkdir(parents=True, exist_ok=True)
    uid, gid = container_user()
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    path.chmod(0o700)


class DockerBackend:
    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client or connect()
        info = self.client.info()
        self._cgroup_version = str(info.get("CgroupVersion", "1"))
        self._cgroup_driver = info.get("CgroupDriver", "")
        self._runtimes = set(info.get("Runtimes") or {})
        self._info = info
        self._toolkit: Toolkit | None = None  # looked for at the first GPU phase

    def toolkit(self) -> Toolkit:
        if self._toolkit is None:
            self._toolkit = find_toolkit(self._info)
        return self._toolkit

    def engine_version(self) -> str:
        return self.client.version().get("Version", "")

    def host_facts(self) -> dict[str, Any]:
        return {**host_info(self.engine_version()), **engine_facts(self.client.info())}

    def engine_info(self) -> Mapping[str, Any]:
        try:
            return self.client.info()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"the container engine does not answer: {exc}") from None

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        from harness.runner.cleanup import remove_containers

        return remove_containers(self.client, dict(labels))

    def image(self, reference: str) -> ImageFacts | None:
        try:
            image = self.client.images.get(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from None
        attrs = image.attrs
        names = {t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"} | set(attrs.get("RepoDigests") or [])
        return ImageFacts(
            id=image.id,
            os=attrs.get("Os", ""),
            architecture=attrs.get("Architecture", ""),
            size_bytes=int(attrs.get("Size") or 0),
            config=attrs.get("Config"),
            names=frozenset(names),
        )

    def pull_image(self, repository: str, tag: str, auth: Mapping[str, str]) -> None:
        try:
            self.client.api.pull(repository, tag=tag, auth_config=dict(auth))
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from None

    def remove_image(self, reference: str) -> None:
        try:
            self.client.images.remove(reference, noprune=False)
        except (docker.errors.ImageNotFound, docker.errors.NotFound):
            pass
        except docker.errors.APIError as exc:
            raise EngineError(str(exc.explanation or exc)) from None

    def save_image(self, digest: str, out: BinaryIO) -> None:
        for chunk in self.client.images.get(digest).save(named=False):
            out.write(chunk)

    def ensure_image(self, digest: str, depot: Any, node_dir: Path, *, pull_from: str | None = None, credential: Any = None) -> None:
        from harness.runner.staging import ensure_image

        ensure_image(self.client, digest, depot, node_dir, pull_from=pull_from, credential=credential)

    def run(self, spec: PhaseSpec) -> PhaseResult:
        problem = runtime_problem(spec.runtime, self._runtimes) or assignment_problem(spec, self._info, self.toolkit)
        if problem:
            return _infra_error(spec, f"this node cannot run it: {problem}; this is not the submission's fault")
        try:
            cgroup = RunCgroup(spec.run_id, version=self._cgroup_version, driver=self._cgroup_driver)
            return _Run(self.client, spec, cgroup, gpu_mode=self.toolkit().mode if spec.gpu_ids else None).execute()
        except _ImageFault as fault:
            return PhaseResult(phase=spec.phase, verdict=PhaseVerdict.RUNTIME_ERROR, message=str(fault), limits=spec.limits.to_dict())
        except _StartRefused as refused:
            why = f"the container engine refused to start it ({refused}); taken for the node's fault and retried, unless the same happens again where other containers start"
            return _infra_error(spec, why, start_refused=str(refused))
        except NvmlError as exc:  # NVML failed before the watch could start: the node's GPUs cannot be watched
            return _infra_error(
                spec, f"its GPUs could not be watched through NVML ({exc}); this is not the submission's fault and it will be retried"
            )
        except _INFRA_ERRORS as exc:
            return _infra_error(
                spec,
                f"the container engine failed ({type(exc).__name__}: {exc}); this is not the submission's fault and it will be retried",
            )


def _node_cuda_version() -> str | None:
    try:
        return load_nvml().cuda_version()
    except NvmlError:
        return None


def _infra_error(spec: PhaseSpec, why: str, start_refused: str = "") -> PhaseResult:
    return PhaseResult(
        phase=spec.phase,
        verdict=PhaseVerdict.INFRA_ERROR,
        message=f"{spec.phase}: {why}",
        limits=spec.limits.to_dict(),
        start_refused=start_refused,
    )


class _Run:
    """One container's life: create, attach, start, watch, collect, remove."""

    def __init__(self, client: docker.DockerClient, spec: PhaseSpec, cgroup: RunCgroup, *, gpu_mode: str | None = "hook") -> None:
        self.client = client
        self.gpu_mode = gpu_mode  # how the toolkit gives GPUs: "hook" (Docker's device requests) or "cdi"
        self.spec = spec
        self.cgroup = cgroup
        self.logs = {"stdout": BoundedLog(spec.limits.log_bytes), "stderr": BoundedLog(spec.limits.log_bytes)}
        self.live = LiveLogs(Path(spec.log_dir), spec.phase, self.logs)  # followed while it runs (``harness logs --follow``)
        self.kill_reason: PhaseVerdict | None = None
        self.kill_message = ""
        self.output = OutputWatch(spec.writable, spec.limits.disk, spec.limits.files)
        self.peak_tmp_bytes: int | None = None
        self.init: ContainerInit | None = None
        self.gpu: GpuWatch | None = None
        self.telemetry: Telemetry | None = None
        self.own_cgroup: ContainerCgroup | None = None  # the container's own cgroup, without the run's parent
        self.image_config: dict = {}
        self.start_called_at: datetime | None = None

    def execute(self) -> PhaseResult:
        container = self._create()
        try:
            stream = self.client.api.attach(container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
            reader = threading.Thread(target=self._pump, args=(stream,), daemon=True)
            reader.start()
            self.start_called_at = datetime.now(UTC)
            try:
                container.start()
            except docker.errors.APIError as exc:
                self._blame(exc)
                raise
            exited = threading.Event()
            threading.Thread(target=self._wait, args=(container, exited), daemon=True).start()
            self.init = ContainerInit.open(self.client.api.inspect_container(container.id)["State"]["Pid"], container.id)
            if self.init is not None and not self.cgroup.available:
                self.own_cgroup = ContainerCgroup.find(self.init.pid)
            try:
                sampler = self._watch(container, exited)
            finally:
                if self.init is not None:
                    self.init.close()
                if self.own_cgroup is not None:
                    self.own_cgroup.close()
            reader.join(timeout=10)
            state = self.client.api.inspect_container(container.id)["State"]
            usage = self._usage(sampler, bool(state.get("OOMKilled")))
            return self._result(state, usage, self.output.final())
        finally:
            try:
                container.remove(force=True, v=True)
            finally:
                self.cgroup.remove()
                self.live.close()  # a run cut short still leaves its logs, and says it ended

    def _create(self):
        spec = self.spec
        for mount in spec.mounts:
            if not mount.read_only:
                make_writable_dir(Path(mount.source))
        options = container_options(spec.limits, runtime=spec.runtime)
        if self.cgroup.enabled:
            options["cgroup_parent"] = self.cgroup.parent
        if spec.gpu_ids:
            options["device_requests"] = device_requests(spec.gpu_ids, self.gpu_mode)
        self.image_config = self.client.api.inspect_image(spec.image).get("Config") or {}
        # What intake refuses but the backend can make harmless (labels) or the engine's start names
        # (no ENTRYPOINT, a relative WORKDIR) is left to those; VOLUMEs it cannot overlay stop it here.
        if problem := volume_problem(self.image_config.get("Volumes") or {}, [m.target for m in spec.mounts]):
            raise _ImageFault(f"{spec.phase} could not start: the image {problem}")
        mounts = [DockerMount(m.target, m.source, type="bind", read_only=m.read_only) for m in spec.mounts]
        mounts += volume_mounts(self.image_config.get("Volumes") or {}, [m.target for m in spec.mounts] + list(options.get("tmpfs") or {}))
        uid, gid = container_user()
        try:
            return self.client.containers.create(
                image=spec.image,
                command=list(spec.command),
                # The harness's user, never the image's USER; with a group given, no supplementary groups from its /etc/group.
                user=f"{uid}:{gid}",
                # The image's ENV comes first in the engine's merge: these override any of its variables of the same name.
                environment={**spec.environment, **gpu_environment(spec.gpu_ids)},
                mounts=mounts,
                labels=self._labels(),
                name=f"harness-{spec.run_id}-{spec.phase}",
                hostname="sandbox",
                # The image's STOPSIGNAL never softens a stop, and its HEALTHCHECK runs nothing.
                stop_signal="SIGKILL",
                healthcheck={"test": ["NONE"]},
                detach=True,
                **options,
            )
        except docker.errors.ImageNotFound:
            raise
        except docker.errors.APIError as exc:
            self._blame(exc)
            raise

    def _labels(self) -> dict[str, str]:
        """The harness's labels; an image's own ``harness.*`` labels (refused at intake) are blanked, since the
        engine copies an image's labels onto its containers and cleanup finds containers by these."""
        spec = self.spec
        blanked = {k: "" for k in self.image_config.get("Labels") or {} if k.startswith(RESERVED_LABEL_PREFIX)}
        return {**blanked, LABEL: spec.run_id, "harness.phase": spec.phase, **spec.labels}

    def _blame(self, exc: docker.errors.APIError) -> None:
        """Raise ``_ImageFault`` when the engine's refusal is the image's doing, ``_StartRefused`` when the
        engine refused the container for an unknown reason (the round weighs it); return (to re-raise)
        when the engine itself failed."""
        engine_message = str(exc.explanation or exc)
        message = start_failure(self.spec.phase, engine_message, self.image_config.get("Entrypoint") or [], self.spec.command)
        message = message or gpu_start_failure(self.spec.phase, engine_message, _node_cuda_version)
        if message is not None:
            raise _ImageFault(message) from exc
        if exc.status_code is not None and exc.status_code < 500 or "OCI runtime" in engine_message:
            raise _StartRefused(" ".join(engine_message.split())) from exc

    def _pump(self, stream) -> None:
        try:
            for out, err in stream:
                if out:
                    self.logs["stdout"].write(out)
                if err:
                    self.logs["stderr"].write(err)
        except _INFRA_ERRORS:
            pass

    def _wait(self, container, exited: threading.Event) -> None:
        try:
            container.wait()
        except _INFRA_ERRORS:
            pass
        exited.set()

    def _watch(self, container, exited: threading.Event) -> StatsSampler:
        """Enforce the wall clock and the output limits until the container exits."""
        deadline = time.monotonic() + self.spec.limits.wall_clock_s
        sampler = StatsSampler(self.client, container.id, enabled=not self.cgroup.available and self.own_cgroup is None)
        self.gpu = gpu_watch(self.spec, lambda: container_pids(self.cgroup, container, self.own_cgroup))
        self.telemetry = Telemetry(self._reader(sampler))
        self.telemetry.poll()  # a first point at once: a phase shorter than a poll still leaves one
        while not self._ended(exited, max(0.0, min(POLL_S, deadline - time.monotonic()))):
            now = time.monotonic()
            if now >= deadline:
                self._kill(container, PhaseVerdict.TIMEOUT, "")
                break
            if problem := self.output.poll(now):
                self._kill(container, PhaseVerdict.OUTPUT_LIMIT, problem)
                break
            if self.gpu is not None and (stop := self.gpu.poll()):
                self._kill(container, stop.verdict, stop.message)  # over its GPU memory, or NVML failing poll after poll
                break
            if self.init is not None and (tmp := self.init.filesystem_used("/tmp")) is not None:
                self.peak_tmp_bytes = max(self.peak_tmp_bytes or 0, tmp)
            sampler.maybe_sample()
            self.live.poll(now)
            if self.own_cgroup is not None:
                self.own_cgroup.poll()
            self.telemetry.poll()
        if not self._ended(exited, 30):
            exited.wait(30)
        return sampler

    # -- accounting: the run's parent cgroup (exact), else the container's own (read to its end), else Docker's stats
    def _ended(self, exited: threading.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` for the container's end; at its init's exit, read its own cgroup one last time."""
        if self.own_cgroup is None or self.init is None or not self.own_cgroup.alive:
            return exited.wait(timeout)
        if self.init.wait_exit(timeout):
            self.own_cgroup.poll(final=True)  # every process is gone; the engine has not removed the cgroup yet
            self.own_cgroup.close()
        return exited.is_set()

    def _reader(self, sampler: StatsSampler):
        if self.cgroup.available:
            return self.cgroup.current
        return self.own_cgroup.current if self.own_cgroup is not None else sampler.current

    def _usage(self, sampler: StatsSampler, oom_killed: bool) -> Usage:
        if (usage := self.cgroup.read()) is not None:
            return usage
        if self.own_cgroup is not None and self.own_cgroup.readings:
            return self.own_cgroup.usage(oom_killed=oom_killed)
        return sampler.usage()

    def _kill(self, container, reason: PhaseVerdict, message: str) -> None:
        self.kill_reason, self.kill_message = reason, message
        if self.init is not None and self.init.kill():
            return  # SIGKILL straight to its init: everything in its PID namespace dies at once
        try:
            # the same through the engine (SIGKILL, never the image's STOPSIGNAL), when its init is not ours to signal
            container.kill(signal="SIGKILL")
        except docker.errors.APIError:
            pass  # it exited on its own meanwhile

    def _result(self, state: dict, usage: Usage, output: OutputUsage) -> PhaseResult:
        spec, limits = self.spec, self.spec.limits
        exit_code = state.get("ExitCode")
        started, ended = _span(state, self.start_called_at)
        result = PhaseResult(
            phase=spec.phase,
            verdict=PhaseVerdict.OK,
            exit_code=exit_code,
            wall_s=round(max(0.0, (ended - started).total_seconds()), 3) if started and ended else 0.0,
            started_at=started.isoformat() if started else None,
            ended_at=ended.isoformat() if ended else None,
            cpu_s=round(usage.cpu_s, 3),
            peak_memory_bytes=usage.peak_memory_bytes,
            peak_pids=usage.peak_pids,
            stdout_bytes=self.logs["stdout"].total,
            stderr_bytes=self.logs["stderr"].total,
            log_truncated=any(log.truncated for log in self.logs.values()),
            output_bytes=output.bytes,
            output_files=output.files,
            peak_tmp_bytes=self.peak_tmp_bytes,
            limits=limits.to_dict(),
            log_tail=self._log_tail(),
            **gpu_figures(self.gpu, spec),
        )
        if self.telemetry is not None:
            result.series.update(self.telemetry.series())
        judgement = judge(
            Observation(
                phase=spec.phase,
                limits=limits,
                exit_code=exit_code,
                oom_killed=bool(state.get("OOMKilled")),
                wall_s=result.wall_s,
                peak_memory_bytes=usage.peak_memory_bytes,
                output=output,
                stopped_for=self.kill_reason,
                stop_message=self.kill_message,
                log_tail=result.log_tail,
                host_disk_full=host_disk_full(spec.writable) if exit_code else None,
            )
        )
        result.verdict, result.message, result.timeout_overshoot_s = judgement.verdict, judgement.message, judgement.timeout_overshoot_s
        if result.verdict is PhaseVerdict.RUNTIME_ERROR and self.logs["stderr"].total < 4096:
            late = exec_failure_after_start(spec.phase, exit_code, self.logs["stdout"].text(), self.logs["stderr"].text())
            result.message = late or result.message
        self.live.close({"verdict": result.verdict.value, "exit_code": exit_code, "wall_s": result.wall_s})
        return result

    def _log_tail(self) -> str:
        for name in ("stderr", "stdout"):
            if self.logs[name].total:
                return self.logs[name].tail_lines(20)
        return ""


def _parse_docker_time(value: str) -> datetime:
    # Docker gives nanoseconds ("2026-11-28T21:00:00.123456789Z"); Python takes microseconds.
    head, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def _engine_time(value: str | None) -> datetime | None:
    """An engine's time (UTC); None when it has none (never started: year 1)."""
    try:
        moment = _parse_docker_time(value or "")
    except ValueError:
        return None
    return moment if moment.year > 1 else None


def _span(state: dict, start_called_at: datetime | None) -> tuple[datetime | None, datetime | None]:
    """When the container started and ended. The engine stamps its start once runc reports the process
    running, and its end from the exit itself: a process that ends within that latency (tens of ms
    under load) would end before it started. Its start is then the harness's start call, the earliest it can be."""
    started, ended = _engine_time(state.get("StartedAt")), _engine_time(state.get("FinishedAt"))
    if started and ended and ended < started and start_called_at is not None:
        started = min(start_called_at, ended)
    return started, ended
