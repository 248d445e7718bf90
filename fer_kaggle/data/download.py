"""Downloading a competition's files with the Kaggle API.

The kaggle package authenticates when it is imported (and exits the process without
credentials), so it is imported here only, and only after credentials are known to exist.
"""

import os
import tempfile
from pathlib import Path

from fer_kaggle.errors import DownloadError

CREDENTIALS_HELP = (
    "put your API token in ~/.kaggle/kaggle.json (Kaggle > Settings > Create New Token, then chmod 600) "
    "or set KAGGLE_API_TOKEN (or KAGGLE_USERNAME and KAGGLE_KEY)"
)


def kaggle_credentials_present():
    """True when the kaggle package would find credentials (never reads their values out)."""
    if os.environ.get("KAGGLE_API_TOKEN") or (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").exists() or (config_dir / "access_token").exists()


def download_competition(competition, directory: Path) -> Path:
    """Download `competition`'s zip into `directory` (atomically); return the zip's path."""
    target = Path(directory) / f"{competition}.zip"
    if target.exists():
        return target
    if not kaggle_credentials_present():
        raise DownloadError(f"no Kaggle credentials: {CREDENTIALS_HELP}")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
            api.competition_download_files(competition, path=tmp, quiet=False)
            zips = list(Path(tmp).glob("*.zip"))
            if len(zips) != 1:
                raise DownloadError(f"the download of {competition!r} gave {len(zips)} zip files, expected 1")
            os.replace(zips[0], target)
    except DownloadError:
        raise
    except SystemExit as e:  # the kaggle package exits on bad credentials
        raise DownloadError(f"Kaggle refused the credentials ({e}): {CREDENTIALS_HELP}") from None
    except Exception as e:
        raise DownloadError(f"could not download competition {competition!r}: {type(e).__name__}: {e}") from None
    return target
