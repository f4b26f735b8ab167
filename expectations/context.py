"""Great Expectations set-up shared by ikou: analytics off, quiet, ephemeral.

Import GX only through this module (or set ``GX_ANALYTICS_ENABLED=false`` first, as this module
does): GX reads the variable when it starts.

:func:`analytics_status` reports, with the real GX API, why no usage statistics are sent:
the environment variable, the context's ``analytics_enabled`` setting (``context.config``) and
whether this GX build carries an analytics module at all (1.x builds before the removal ship
``great_expectations.analytics`` with ``ENV_CONFIG.gx_analytics_enabled``; 1.24 ships none).
"""

from __future__ import annotations

import importlib
import importlib.util
import os

os.environ["GX_ANALYTICS_ENABLED"] = "false"

import great_expectations as gx  # noqa: E402 - after the variable is set

__all__ = ["analytics_status", "assert_analytics_off", "gx", "new_context"]


def new_context():
    """An ephemeral GX context with analytics and progress bars switched off."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # The ephemeral context comes with a default Data Docs site in a fresh temporary folder;
    # drop it (and the empty folder) so Data Docs go only where the caller adds a site.
    for name, site in dict(context.config.data_docs_sites or {}).items():
        folder = (site.get("store_backend") or {}).get("base_directory")
        context.delete_data_docs_site(name)
        if folder and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
    context.config.analytics_enabled = False
    context.config.progress_bars = ProgressBarsConfig(globally=False)
    assert_analytics_off(context)
    return context


def analytics_status(context=None) -> dict:
    """What GX itself says about usage statistics (all values must read 'off')."""
    status: dict = {"env_GX_ANALYTICS_ENABLED": os.environ.get("GX_ANALYTICS_ENABLED")}
    if importlib.util.find_spec("great_expectations.analytics") is None:
        status["gx_analytics_module"] = None
    else:  # GX 1.x builds that still ship the PostHog client
        cfg = importlib.import_module("great_expectations.analytics.config")
        status["gx_analytics_module"] = bool(cfg.ENV_CONFIG.gx_analytics_enabled)
    if context is not None:
        status["context_analytics_enabled"] = context.config.analytics_enabled
    return status


def assert_analytics_off(context=None) -> dict:
    """Raise RuntimeError unless every GX analytics switch is off; returns the status."""
    status = analytics_status(context)
    if str(status["env_GX_ANALYTICS_ENABLED"]).lower() not in ("false", "0"):
        raise RuntimeError("GX_ANALYTICS_ENABLED must be 'false'")
    if status["gx_analytics_module"]:
        raise RuntimeError("GX analytics are enabled in great_expectations.analytics.config")
    if context is not None and status["context_analytics_enabled"] is not False:
        raise RuntimeError("GX context analytics_enabled is not False")
    return status
