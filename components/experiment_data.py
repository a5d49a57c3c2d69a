"""An experiment's records and analysis tables, cached per experiment and number of finished prompts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from fusion_core import analysis
from fusion_core.batch_config import BatchConfig
from fusion_core.experiments import ExperimentStore


@dataclass
class ExperimentData:
    """Everything the experiment tabs show."""

    records: list[dict[str, Any]]
    config: BatchConfig
    overview: analysis.Overview
    judgements: pd.DataFrame
    win_rates: pd.DataFrame
    scaling: pd.DataFrame
    attribution: analysis.AttributionTables
    metrics: pd.DataFrame
    accuracy: pd.DataFrame


def config_key(config: dict[str, Any]) -> str:
    """A short digest of a stored configuration, for cache keys."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@st.cache_data(ttl=3600, max_entries=16, show_spinner="Computing win rates and intervals…")
def experiment_data(
    _experiments: ExperimentStore, database: str, experiment_id: str, finished: int, config_key: str
) -> ExperimentData:
    """Read the finished records and build the tables (`database`, `finished` and `config_key` key the cache:
    re-judging changes the stored configuration, not the number of finished prompts)."""
    records = _experiments.results(experiment_id)
    config = BatchConfig.from_dict(_experiments.get(experiment_id).config)
    return ExperimentData(
        records=records,
        config=config,
        overview=analysis.overview(records),
        judgements=analysis.judgement_frame(records),
        win_rates=analysis.judge_win_rates(records),
        scaling=analysis.scaling_frame(records, config),
        attribution=analysis.attribution_frame(records),
        metrics=analysis.metric_frame(records),
        accuracy=analysis.accuracy_frame(records),
    )
