"""The WORC Lipo images (T1 MRI + segmentations) from the WORC XNAT server, anonymously.

The WORC database's images live on XNAT (``https://xnat.bmia.nl``, project
``worc``); the Lipo patients are the subjects whose custom field ``dataset``
is ``Lipo``. This follows the layout of WORCDatabase's ``datadownloader.py``
(MStarmans91/WORCDatabase): every NIfTI resource of every scan of a subject is
downloaded and its ``.nii.gz`` files are put directly in ``<dest>/<subject>/``.

Needs the optional ``xnat`` package and internet access; offline it raises
``DataUnavailableError`` with the server and how to proceed. The images are
not part of the registry (no hashes are published for them), so nothing here
is verified; the chapters that use WORC Lipo work from the published features
(``load_cohort("worc_lipo")``) and use synthetic images otherwise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .fetch import DataUnavailableError

WORC_XNAT_URL = "https://xnat.bmia.nl"
WORC_PROJECT = "worc"
WORC_DATASETS = ("Lipo", "Desmoid", "GIST", "Liver", "CRLM", "Melanoma")


def _connect(server: str, timeout: float):
    try:
        import xnat
    except ImportError as exc:  # pragma: no cover - xnat is in requirements.txt
        raise DataUnavailableError("the WORC images need the `xnat` package: pip install xnat") from exc
    import requests

    try:
        return xnat.connect(server, default_timeout=timeout, pilot_timeout=timeout, loglevel="ERROR")
    except (requests.exceptions.RequestException, OSError) as exc:
        raise _offline(server, exc) from exc
    except Exception as exc:  # xnat's own errors (login refused, not an XNAT server, ...)
        raise DataUnavailableError(
            f"could not open an anonymous session on the WORC XNAT server {server} ({type(exc).__name__}: {exc})."
        ) from exc


def _offline(server: str, exc: BaseException) -> DataUnavailableError:
    return DataUnavailableError(
        f"WORC Lipo images are not available: cannot reach the WORC XNAT server {server} "
        f"({type(exc).__name__}: {exc}). The images are only on XNAT (project {WORC_PROJECT!r}, subjects with "
        f"field dataset=Lipo); run `replicate data fetch worc_lipo_images --dest DIR` on a machine with internet "
        f"access. The WORC Lipo features and splits (`replicate data fetch worc_lipo`) do not need XNAT."
    )


def fetch_worc_lipo_images(
    dest: str | Path | None = None,
    *,
    dataset: str = "Lipo",
    server: str = WORC_XNAT_URL,
    project: str = WORC_PROJECT,
    nsubjects: int | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download the NIfTI images + masks of WORC ``dataset`` (default Lipo) into ``dest/<subject>/``.

    ``dest`` defaults to ``replicate.config.data_dir() / "worc_lipo_images"``.
    Subjects already present (a folder with ``.nii.gz`` files) are skipped.
    Returns ``dest``. Raises ``DataUnavailableError`` when the server cannot be
    reached (offline), ``KeyError`` for an unknown ``dataset``.
    """
    import requests
    from tqdm.auto import tqdm

    from .. import config

    if dataset not in WORC_DATASETS:
        raise KeyError(f"{dataset!r} is not a WORC dataset; one of {WORC_DATASETS}")
    dest = Path(dest) if dest is not None else config.data_dir() / "worc_lipo_images"
    dest.mkdir(parents=True, exist_ok=True)
    session = _connect(server, timeout)
    try:
        subjects = session.projects[project].subjects
        chosen = []
        for label in tqdm(list(subjects.keys()), desc=f"XNAT {project}: select {dataset}", disable=not progress):
            subject = subjects[label]
            if subject.fields.get("dataset") == dataset:
                chosen.append(subject)
            if nsubjects is not None and len(chosen) >= nsubjects:
                break
        done = 0
        for subject in tqdm(chosen, desc=f"XNAT {project}: download {dataset}", unit="subject", disable=not progress):
            out = dest / subject.label
            if out.is_dir() and any(out.glob("*.nii.gz")):
                done += 1
                continue
            staging = dest / f".{subject.label}.part"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for experiment in subject.experiments.values():
                for scan in experiment.scans.values():
                    for resource in scan.resources.values():
                        if resource.label == "NIFTI":
                            resource.download_dir(str(staging))
            files = sorted(staging.rglob("*.nii.gz"))
            if not files:
                shutil.rmtree(staging, ignore_errors=True)
                continue
            out.mkdir(parents=True, exist_ok=True)
            for f in files:
                target, n = out / f.name, 1
                while target.exists():  # two scans with the same file name: keep both
                    target, n = out / f"{f.name[:-7]}_{n}.nii.gz", n + 1
                shutil.move(str(f), target)
            shutil.rmtree(staging, ignore_errors=True)
            done += 1
    except (requests.exceptions.RequestException, OSError) as exc:
        raise _offline(server, exc) from exc
    finally:
        try:
            session.disconnect()
        except Exception:
            pass
    if done == 0:
        raise DataUnavailableError(f"no {dataset} subject with NIfTI resources found on {server} project {project}")
    return dest
