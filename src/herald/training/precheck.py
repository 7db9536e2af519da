"""What a ``finetune.requested`` can be checked for when it is published, so a request that
cannot run is refused at once (422) instead of failing in its job seconds later
(``herald finetune --no-wait`` exited 0 on a missing data set or an unknown base model).

The job keeps its own checks: a data set or model can still disappear between publish and run.
Only local, cheap facts are checked here: the base model resolves (registry, local folder,
bundled model, the local hub cache — never a download), the data set is registered or its file
is readable, and the ``eval_suites`` parse. URLs are left to the job (and the egress policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.datasets.errors import DatasetError
from herald.errors import HeraldError, NotFound

if TYPE_CHECKING:
    from herald.services import Services


def check_finetune_request(message: Any, services: Services) -> None:
    """Raise a 422 :class:`HeraldError` naming the field that cannot work (against the
    publishing Herald's registry, artifact store and settings)."""
    data = message.payload() if hasattr(message, "payload") else dict(message)
    _check_base_model(str(data.get("base_model") or ""), services)
    _check_dataset(str(data.get("dataset") or ""), services.registry)
    for suite in data.get("eval_suites") or []:
        _check_suite(str(suite), services.settings)


def _check_base_model(ref: str, services: Services) -> None:
    from herald.models.errors import ModelSourceError
    from herald.models.resolve import resolve_model

    try:
        resolve_model(ref, services.registry, artifacts=services.artifacts)
    except (ModelSourceError, NotFound) as exc:  # NotFound: a models:/ URI the registry lacks
        raise _field_error("base_model", exc) from None


def _check_dataset(ref: str, registry: Any) -> None:
    from herald.datasets.loader import is_url
    from herald.datasets.training import looks_like_file

    if not ref or is_url(ref):
        return  # empty: the schema refuses it; URLs: fetched (and policed) by the job
    if looks_like_file(ref):
        path = Path(ref.removeprefix("file://")).expanduser()
        if not path.is_file():
            raise DatasetError(
                f"dataset: no readable file {ref!r} on the server (a registered data set "
                "name, datasets:/name/version, or a .jsonl/.csv/.parquet file the server can "
                "read; the herald CLI uploads local files with `herald datasets register`)"
            )
        return
    try:
        registry.get_dataset(ref)
    except NotFound as exc:
        raise DatasetError(f"dataset: {exc.message}") from None


def _check_suite(ref: str, settings: Any) -> None:
    from herald.evaluation.settings import evaluation_settings, suite_search_paths
    from herald.evaluation.suites import load_suite
    from herald.security.files import FilePolicy

    es = evaluation_settings(settings)
    try:
        load_suite(
            ref,
            suite_search_paths(Path(settings.home), es),
            policy=FilePolicy.from_settings(settings),
        )
    except HeraldError as exc:
        if exc.status == 403:
            raise  # the file policy's refusal as it is
        raise _field_error(f"eval_suites ({ref})", exc) from None


def _field_error(field: str, exc: HeraldError) -> HeraldError:
    err = HeraldError(f"{field}: {exc.message}")
    err.code, err.status = exc.code, 422
    return err
