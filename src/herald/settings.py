"""The settings tree: ``herald.yaml`` plus ``HERALD_*`` environment variables (``__`` nests).

Precedence (highest first): init arguments, environment, ``.env``, ``herald.yaml``, defaults.
The YAML file is ``$HERALD_CONFIG`` if set, else ``./herald.yaml``, else
``$HERALD_HOME/herald.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from herald.cronexpr import validate_cron
from herald.security.pii import PII_KINDS, normalize_kinds

DEFAULT_PORT = 8700


def default_home() -> Path:
    return Path(os.environ.get("HERALD_HOME") or Path.home() / ".herald").expanduser()


def config_file() -> Path | None:
    explicit = os.environ.get("HERALD_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    for candidate in (Path("herald.yaml"), default_home() / "herald.yaml"):
        if candidate.is_file():
            return candidate
    return None


class _Section(BaseModel):
    """A nested settings section: an unknown key (a typo in herald.yaml or a HERALD_A__B
    variable) is an error naming it, like an unknown top-level key, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class APISettings(_Section):
    """The HTTP server of ``herald up`` / ``herald api``."""

    host: str = Field("127.0.0.1", description="Bind address; non-loopback needs HERALD_API_KEY.")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="TCP port of API and dashboard.")
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="Largest accepted request body (message payloads: 64 KiB)."
    )


class SensorSettings(_Section):
    """Sensor runner defaults (a sensor may override them)."""

    max_attempts: int = Field(5, ge=1, description="Attempts before an event is dead-lettered.")
    backoff_initial_s: float = Field(0.2, gt=0, description="First retry delay (doubles).")
    backoff_max_s: float = Field(30.0, gt=0, description="Largest retry delay.")
    timeout_s: float = Field(60.0, gt=0, description="Time limit of one handler call.")
    batch_size: int = Field(256, ge=1, description="Events read per sensor per round.")
    idle_poll_s: float = Field(
        1.0, gt=0, description="Safety re-check interval when idle (pushes arrive sooner)."
    )
    ownership_retry_s: float = Field(
        2.0,
        gt=0,
        description="How often a worker re-checks that it owns a sensor, or tries to take over "
        "a sensor another worker owns (the failover delay when that worker dies).",
    )


class KubernetesSettings(_Section):
    """The ``kubernetes`` executor: one ``batch/v1`` Job per Herald job attempt."""

    enabled: bool = Field(False, description="Offer the kubernetes executor on this worker.")
    namespace: str = Field("default", description="Namespace the Jobs are created in.")
    image: str = Field("herald:latest", description="Image with Herald and the job plugins.")
    image_pull_policy: str = Field("IfNotPresent", description="Always, IfNotPresent or Never.")
    service_account: str | None = Field(None, description="Service account of the job pods.")
    env_secret: str | None = Field(
        None, description="Secret whose keys become the pods' environment (database URL, keys)."
    )
    cpu: str = Field("1", description="CPU request and limit per job pod.")
    memory: str = Field("2Gi", description="Memory request and limit per job pod.")
    gpus: int = Field(0, ge=0, description="nvidia.com/gpu per job pod.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Pod tolerations (Kubernetes objects, camelCase)."
    )
    backoff_limit: int = Field(
        0, ge=0, description="Pod retries inside one attempt (Herald retries attempts itself)."
    )
    active_deadline_s: int | None = Field(
        None, ge=1, description="Default deadline of a job pod; a job's timeout_s wins."
    )
    ttl_after_finished_s: int = Field(3600, ge=0, description="Finished Jobs are deleted after.")
    capacity: int = Field(16, ge=1, description="Jobs this worker runs on the cluster at once.")
    poll_s: float = Field(2.0, gt=0, description="Job status polling interval.")


class RaySettings(_Section):
    """The ``ray`` executor: each Herald job attempt as a Ray task on a cluster."""

    enabled: bool = Field(False, description="Offer the ray executor on this worker.")
    address: str = Field(
        "auto",
        description="Cluster to join: host:port of the head's GCS, ray://host:10001 (Ray "
        "Client), 'auto' (a cluster started on this machine / $RAY_ADDRESS) or 'local' "
        "(start a private single-node cluster in the worker process).",
    )
    namespace: str = Field("herald", description="Ray namespace of Herald's tasks and actors.")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray runtime_env of the job tasks (pip, env_vars, working_dir, ...).",
    )
    forward_env: bool = Field(
        True,
        description="Pass this worker's HERALD_* variables (but HERALD_API_KEY) to the jobs, "
        "so they find the same database, artifacts and home.",
    )
    num_cpus: float = Field(1.0, ge=0, description="CPUs a job requests unless it says.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs a job requests unless it says.")
    memory: str | None = Field(
        None, description="Memory a job requests unless it says (bytes or 512MiB, 2GiB, 2Gi)."
    )
    job_resources: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Resource requests by job name: {finetune: {cpus: 2, gpus: 1, "
        "memory: 8GiB}}; they override the job's own and the defaults above.",
    )
    local_num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the private cluster when address is 'local'."
    )
    capacity: int = Field(8, ge=1, description="Jobs this worker runs on the cluster at once.")
    poll_s: float = Field(0.5, gt=0, description="How often a job task checks its process.")
    connect_timeout_s: float = Field(
        10.0, gt=0, description="How long to wait for the cluster before failing."
    )


class JobSettings(_Section):
    """Job queue and executors."""

    default_executor: str = Field("local", description="Executor for jobs that name none.")
    lease_s: float = Field(15.0, gt=0.05, description="Lease length; heartbeats renew it.")
    max_attempts: int = Field(3, ge=1, description="Attempts per job before it fails.")
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay of a failed job.")
    local_concurrency: int = Field(2, ge=1, description="Parallel subprocess jobs per worker.")
    inline_concurrency: int = Field(8, ge=1, description="Parallel in-process jobs per worker.")
    cancel_grace_s: float = Field(5.0, ge=0, description="SIGTERM → SIGKILL grace on cancel.")
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    override_local: bool = Field(
        False,
        description="Jobs pinned to the local executor run on default_executor too (set when "
        "HERALD_EXECUTOR names a cluster executor, so heavy work goes to the cluster).",
    )

    def executor_for(self, pinned: str | None) -> str:
        """The executor of a job whose definition pins ``pinned`` (``None``: none pinned)."""
        if pinned is None or (pinned == "local" and self.override_local):
            return self.default_executor
        return pinned


class ServedModel(_Section):
    """One model served under a public name (``serving.models.<name>``)."""

    backend: str = Field(
        description="Backend name: llamacpp, transformers, embeddings, openai, vllm, fake."
    )
    model: str = Field(
        description="GGUF file, model folder, HF id, upstream model or models:/ URI."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend options (n_ctx, adapter, base_url, ...)."
    )
    parent: str | None = Field(None, description="Base model name (LoRA adapters).")


class DeploymentSettings(_Section):
    """Deployments (``serving.deployments``): health checks, blue-green drains, alias moves."""

    health_interval_s: float = Field(5.0, gt=0, description="Replica health-check period.")
    drain_timeout_s: float = Field(
        60.0, ge=0, description="Longest wait for an old version's requests to finish."
    )
    follow_aliases: bool = Field(
        True, description="Redeploy deployments that follow an alias when it moves."
    )


class RequestLogSettings(_Section):
    """Sampled, PII-redacted request logs under ``$HERALD_HOME/serving/requests/`` (on
    PostgreSQL: the shared table ``herald_requests``)."""

    enabled: bool = Field(True, description="Write request logs.")
    sample_rate: float = Field(1.0, ge=0, le=1, description="Fraction of requests logged.")
    include_text: bool = Field(True, description="Log (redacted) prompts and completions.")
    max_file_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Rotate files at this size.")
    max_files: int = Field(10, ge=1, description="Rotated files kept.")
    retention_days: float = Field(
        30.0, gt=0, description="On PostgreSQL: rows of herald_requests older than this deleted."
    )
    max_rows: int = Field(
        5_000_000, ge=1, description="On PostgreSQL: newest rows of herald_requests kept."
    )
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="USD per 1k tokens by model name (or '*'): {'prompt': x, 'completion': y}.",
    )


class ServingSettings(_Section):
    """The OpenAI-compatible data plane (``/v1/chat/completions``, ...)."""

    models: dict[str, ServedModel] = Field(
        default_factory=dict, description="Models served by name, in addition to the defaults."
    )
    bundled: bool = Field(True, description="Serve the bundled SmolLM2 and MiniLM when installed.")
    registry: bool = Field(True, description="Serve registered model versions by name/URI.")
    max_loaded_models: int = Field(4, ge=1, description="Loaded models kept (LRU unload).")
    max_queue: int = Field(
        64, ge=0, description="Requests waiting per model beyond its concurrency (then 429)."
    )
    threads: int | None = Field(None, ge=1, description="CPU threads per model (default: all).")
    batch_window_ms: float = Field(
        5.0, ge=0, description="transformers: wait this long to group concurrent requests."
    )
    max_batch_size: int = Field(16, ge=1, description="transformers: largest dynamic batch.")
    request_timeout_s: float | None = Field(
        600.0, gt=0, description="Longest generation (then 504, or an error event in a stream)."
    )
    deployments: DeploymentSettings = Field(default_factory=lambda: DeploymentSettings())
    guardrails: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Default guardrail rules for models without a deployment-level pipeline "
        "(see docs/guides/guardrails.md).",
    )
    guardrail_events_interval_s: float = Field(
        2.0, gt=0, description="guardrail.triggered messages are aggregated over this window."
    )
    request_log: RequestLogSettings = Field(default_factory=lambda: RequestLogSettings())
    rate_limit_per_minute: float = Field(
        600.0, gt=0, description="Default requests per minute of a client API key."
    )


BUNDLED_EMBEDDER = "all-minilm-l6-v2"


class RagSettings(_Section):
    """Defaults for collections, ingestion and retrieval."""

    store_url: str | None = Field(
        None,
        description="Vector store URL (local:///folder, postgresql://…, memory://); "
        "default local://$HERALD_HOME/rag/stores.",
    )
    catalog_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the collection/document catalog; "
        "default sqlite:///$HERALD_HOME/rag/catalog.db.",
    )
    embedding_model: str = Field(
        BUNDLED_EMBEDDER,
        description="Default embedding model of new collections: all-minilm-l6-v2 (bundled), "
        "sentence-transformers:<path|hub id>, openai:<model>@<base url>, hash:<dim>.",
    )
    embedding_batch_size: int = Field(32, ge=1, le=4096, description="Texts per embedding call.")
    embedding_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="torch threads for batch embedding (default: torch's); queries use one "
        "thread, which is fastest for a few short texts.",
    )
    embeddings_api_key: str | None = Field(
        None, description="Bearer key for openai:<model>@<url> embedding models."
    )
    rerank_url: str | None = Field(
        None,
        description="Base URL of a served reranker speaking /v1/rerank (vLLM, TEI, Jina); "
        "used by queries with rerank: true.",
    )
    rerank_model: str = Field("reranker", description="Model name sent to the reranker.")
    rerank_api_key: str | None = Field(None, description="Bearer key for the reranker.")
    chunk_size: int = Field(200, ge=16, le=8192, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(32, ge=0, le=4096, description="Tokens shared by neighbours.")
    max_file_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Files larger than this are reported and skipped."
    )
    trust_remote_code: bool = Field(
        False, description="Allow custom model code for sentence-transformers models."
    )


def _shipped_suites() -> list[str]:
    """``examples/eval`` of a source checkout, when there is one."""
    here = Path(__file__).resolve().parents[2] / "examples" / "eval"
    return [str(here)] if here.is_dir() else []


class EvaluationSettings(_Section):
    """Defaults of evaluation runs and of the built-in evaluation sensors."""

    suite_paths: list[str] = Field(
        default_factory=_shipped_suites,
        description="Folders searched for suites given by name (<name>.yaml); "
        "$HERALD_HOME/evaluations/suites is always searched first.",
    )
    concurrency: int = Field(8, ge=1, le=256, description="Items evaluated at once (default).")
    request_timeout_s: float = Field(300.0, gt=0, description="Per-request timeout.")
    on_register: bool = Field(
        True, description="model.registered → evaluate the version on its configured suites."
    )
    on_register_suites: list[str] = Field(
        default_factory=list,
        description="Suites run for every registered version (a version's tag 'eval_suites', "
        "comma-separated, overrides). Empty: only tagged versions are evaluated.",
    )
    promotion: bool = Field(
        True,
        description="evaluation.completed → promote to `promote_alias` when significantly "
        "better than `champion_alias`.",
    )
    champion_alias: str = Field("champion", description="Alias the candidate is compared with.")
    promote_alias: str = Field("challenger", description="Alias given to a significant winner.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Paired bootstrap confidence.")


class RetrainSettings(_Section):
    """The default drift → retrain sensors (``herald.monitoring.sensors``)."""

    enabled: bool = Field(True, description="React to drift.detected by retraining.")
    require_approval: bool = Field(
        False, description="Ask for approval.requested before registering the data set."
    )
    cooldown_s: float = Field(6 * 3600, ge=0, description="At most one retraining per period.")
    max_runs_per_day: int = Field(2, ge=0, description="Retrainings per model per 24 h.")
    min_score: float = Field(
        0.5, ge=0, le=1, description="Feedback score at which an answer counts as accepted."
    )
    require_feedback: bool = Field(
        True, description="Only train on answers with accepted feedback (else all successes)."
    )
    min_rows: int = Field(8, ge=1, description="Fewer accepted answers: skip, say why.")
    max_rows: int = Field(2000, ge=1, description="Most recent accepted answers kept.")
    dataset_prefix: str = Field("traffic-", description="Data set name = prefix + model.")
    base_model: str | None = Field(
        None, description="What to fine-tune (default: models:/<served model name>)."
    )
    model_name: str | None = Field(
        None, description="Registry name of the result (default: the served model name)."
    )
    finetune: dict[str, Any] = Field(
        default_factory=dict, description="Extra finetune.requested parameters (max_steps, ...)."
    )


class MonitoringSettings(_Section):
    """Monitors, threshold rules and the closed loop (``herald.monitoring``)."""

    enabled: bool = Field(True, description="Evaluate the rules on their schedule.")
    schedule: str = Field(
        "*/5 * * * *",
        description="Cron expression of the monitoring.schedule sensor that evaluates the rules "
        "(5 fields, or 6 with seconds last: '* * * * * */30').",
    )
    timezone: str = Field("UTC", description="Time zone of the schedule (IANA name).")
    rules_file: Path | None = Field(
        None, description="YAML threshold rules (default: the built-in rules)."
    )
    embedder: str = Field(
        "all-minilm-l6-v2", description="Embedding model of prompt drift (hash:<dim> is cheap)."
    )
    min_samples: int = Field(30, ge=2, description="Fewer requests per window: no verdict.")
    max_samples: int = Field(500, ge=2, description="Requests per window used by drift tests.")
    permutations: int = Field(300, ge=10, description="Permutations of the MMD test.")
    seed: int = Field(0, description="Seed of subsampling and permutations.")
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)

    @model_validator(mode="after")
    def _valid_schedule(self) -> MonitoringSettings:
        from herald.errors import ConfigurationError

        try:
            validate_cron(self.schedule, self.timezone, "monitoring.schedule")
        except ConfigurationError as exc:
            raise ValueError(exc.message) from None
        return self


DEFAULT_ALERT_TYPES: tuple[str, ...] = (
    "drift.detected",
    "quality.degraded",
    "slo.breached",
    "budget.exceeded",
    "retrain.skipped",
    "approval.requested",
    "deployment.rolledback",
    "sensor.deadlettered",
)


class WebhookSettings(_Section):
    """One webhook that alert messages are forwarded to (``herald.alerting``)."""

    name: str = Field(
        ..., pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Webhook name (a-z, 0-9, _ -)."
    )
    url: str = Field(
        ..., pattern=r"^https?://", description="Receiver URL (http:// only for trusted networks)."
    )
    types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALERT_TYPES),
        min_length=1,
        description="Message types forwarded (default: the alert types).",
    )
    secret_env: str | None = Field(
        None,
        description="Env var holding the signing secret (Standard Webhooks; whsec_<base64> or raw).",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Time limit of one delivery.")
    max_attempts: int = Field(5, ge=1, le=50, description="Delivery attempts (5xx/429/timeouts).")


class AlertingSettings(_Section):
    """Forward alert messages to webhooks, signed, with retries (``herald.alerting``)."""

    webhooks: list[WebhookSettings] = Field(
        default_factory=list, description="Webhooks (YAML list in herald.yaml)."
    )

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, v: list[WebhookSettings]) -> list[WebhookSettings]:
        seen: set[str] = set()
        for wh in v:
            if wh.name in seen:
                raise ValueError(f"webhook name {wh.name!r} is used twice")
            seen.add(wh.name)
        return v


class FileAccessSettings(_Section):
    """Which server-side files an API or message caller may name (``security.files``).

    Every path a caller can name (RAG sources, data sets, suites, ``artifact_uri``, fine-tune
    configs and outputs, batch inputs, prompt files) is checked after URL-decoding, ``~``
    expansion and symlink resolution against these roots.
    """

    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Folders callers may read from, in addition to $HERALD_HOME.",
    )
    allow_cwd_on_loopback: bool = Field(
        True,
        description="Also allow the working directory of the server while it binds loopback only.",
    )
    server_cwd: Path | None = Field(
        None,
        description="Working directory of a loopback-bound server, recorded at start and passed "
        "to its jobs (HERALD_SECURITY__FILES__SERVER_CWD); set by Herald, leave unset.",
    )
    max_upload_bytes: int = Field(
        512 << 20, ge=1, description="Largest total size of one upload (herald CLI → server)."
    )
    max_upload_files: int = Field(10_000, ge=1, description="Most files in one upload.")


class EgressSettings(_Section):
    """Where the server may fetch from on a caller's behalf (``security.egress``)."""

    allow_private: bool = Field(
        False,
        description="Allow loopback, link-local and private addresses for every caller-named "
        "URL (only for a server on a trusted, single-user machine); cloud metadata addresses "
        "still need an allowed_hosts entry.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts, host:port pairs or CIDR ranges allowed even when private "
        "(e.g. an in-cluster vLLM at 10.0.0.5:8000).",
    )


class SecretSpec(_Section):
    """An operator-defined credential, referenced by name, sent only to its hosts."""

    value: str = Field(description="The secret itself (never returned by any API).")
    hosts: list[str] = Field(
        min_length=1,
        description="Hosts (or host:port) this secret may be sent to; any other host is refused.",
    )


class LimitSettings(_Section):
    """Data-plane fairness (``security.limits``)."""

    max_prompt_chars: int = Field(
        400_000, ge=1, description="Largest prompt (all messages together) in characters."
    )
    max_concurrent_per_key: int = Field(
        8, ge=1, description="Requests one client key may have in flight (then queue/429)."
    )
    max_queued_per_key: int = Field(
        16, ge=0, description="Requests one client key may have waiting for a slot (then 429)."
    )
    queue_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait of a queued request for its key's slot (then 429).",
    )
    max_json_depth: int = Field(64, ge=4, description="Deepest JSON nesting accepted.")
    template_max_steps: int = Field(
        1_000_000,
        ge=1000,
        description="Work one prompt/chat template render may do: calls, filters and loop "
        "iterations (a macro call counts 10); then 400.",
    )
    template_max_output_chars: int = Field(
        1_000_000,
        ge=1000,
        description="Longest string, list or rendered output a template may build; numbers "
        "above it are refused as call arguments (range, center, ...).",
    )


class AuthSecuritySettings(_Section):
    """Sessions and key throttling (``security.auth``)."""

    session_ttl_s: float = Field(12 * 3600, gt=0, description="Dashboard session lifetime.")
    max_failures: int = Field(
        10, ge=1, description="Failed logins / wrong keys per client address per window."
    )
    failure_window_s: float = Field(60.0, gt=0, description="Window of the failure count.")
    lockout_s: float = Field(60.0, gt=0, description="Retry-After once the count is reached.")
    min_api_key_length: int = Field(
        24, ge=8, description="Shortest HERALD_API_KEY accepted at start."
    )


class PIISettings(_Section):
    """One PII policy (``security.pii``): detectors and where they apply."""

    kinds: list[str] = Field(
        default_factory=lambda: list(PII_KINDS),
        description="Kinds of personal data detected everywhere (datasets, RAG, prompts, "
        f"guardrail pii rules without kinds, request logs): {', '.join(PII_KINDS)}; "
        "aliases card, ip.",
    )
    log_raw: bool = Field(
        False,
        description="Keep raw (unredacted) prompts, completions and feedback comments at rest "
        "(request log files / herald_requests, feedback). Default: redacted.",
    )
    redact_ingest: bool = Field(
        False,
        description="Redact PII from every data set registered and RAG document ingested, "
        "whatever the request's redact_pii says (default: only where redact_pii is set).",
    )
    prompts: Literal["off", "warn", "redact", "block"] = Field(
        "warn",
        description="Prompt templates with PII when saved: warn (saved, warnings in the "
        "response and log), redact (PII replaced by placeholders), block (400), off.",
    )

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, v: list[str]) -> list[str]:
        return list(normalize_kinds(v))


class SecuritySettings(_Section):
    """Policies for files, egress, secrets, limits, sessions and PII (docs/security.md)."""

    files: FileAccessSettings = Field(default_factory=FileAccessSettings)
    egress: EgressSettings = Field(default_factory=EgressSettings)
    secrets: dict[str, SecretSpec] = Field(
        default_factory=dict,
        description="Named upstream credentials (HERALD_SECURITY__SECRETS__<NAME>__VALUE / "
        "__HOSTS); requests name them by api_key_secret.",
    )
    limits: LimitSettings = Field(default_factory=LimitSettings)
    auth: AuthSecuritySettings = Field(default_factory=AuthSecuritySettings)
    pii: PIISettings = Field(default_factory=PIISettings)
    trust_remote_code: bool = Field(
        False,
        description="Allow custom model code (HF trust_remote_code). Operator setting only; "
        "no message or request field can turn it on.",
    )
    allow_unsafe_weights: bool = Field(
        False,
        description="Allow non-safetensors weights (pickle-based .bin/.pt). Operator setting only.",
    )


class Settings(BaseSettings):
    """Herald settings; every field maps to ``HERALD_<NAME>`` (nested with ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix="HERALD_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(
        default_factory=default_home, description="State folder (db, keys, artifacts)."
    )
    api_key: str | None = Field(
        None, description="Admin API key. If unset, one is generated into $HERALD_HOME/admin.key."
    )
    database_url: str | None = Field(
        None, description="Event log + metadata URL; default sqlite:///$HERALD_HOME/herald.db."
    )
    bus_url: str | None = Field(
        None,
        description="Message bus URL (nats://host:4222[,host2:4222][?stream=&replicas=&ack_wait=]); "
        "needs a PostgreSQL database_url. Unset: the database is the bus.",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        "FULL", description="SQLite durability; FULL fsyncs every commit (group-committed)."
    )
    artifacts_url: str | None = Field(
        None,
        description="Artifact store URL (file:///path, s3://bucket/prefix); "
        "default file://$HERALD_HOME/artifacts.",
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="Python files, module names or YAML rule files to load at start.",
    )
    log_level: str = Field("INFO", description="Python log level.")
    executor: str | None = Field(
        None,
        description="Default executor of jobs that name none (inline, local, ray, kubernetes); "
        "overrides jobs.default_executor. HERALD_EXECUTOR=ray also enables the ray executor.",
    )
    api: APISettings = Field(default_factory=APISettings)
    sensors: SensorSettings = Field(default_factory=SensorSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    @field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @model_validator(mode="after")
    def _default_executor(self) -> Settings:
        """``executor`` (HERALD_EXECUTOR) wins over ``jobs.default_executor``; naming a
        cluster executor enables it and moves jobs pinned to ``local`` there as well."""
        if self.executor:
            self.jobs.default_executor = self.executor
            if self.executor not in ("inline", "local"):
                self.jobs.override_local = True
            if self.executor == "ray":
                self.jobs.ray.enabled = True
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'herald.db'}"

    @property
    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or (self.home / "artifacts").resolve().as_uri()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        path = config_file()
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return (*sources, file_secret_settings)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and ``herald.yaml``; raise a readable error."""
    from pydantic import ValidationError

    from herald.errors import ConfigurationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False)
        ]
        where = config_file()
        raise ConfigurationError(
            "invalid settings"
            + (f" (from {where} and HERALD_* variables)" if where else "")
            + ":\n"
            + "\n".join(lines)
        ) from None
