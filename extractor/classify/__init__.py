"""Classify interviewee turns into catalog issue categories, lifecycle phases and a
``mitigation`` flag. See :mod:`extractor.classify.model` for how the parts fit together."""

from extractor.classify.config import ModelConfig, TrainConfig
from extractor.classify.features import sentence_spans, split_sentences
from extractor.classify.model import FORMAT, IssueClassifier, data_hash, predictions_summary, verify_model_dir
from extractor.classify.thresholds import group_folds, tune_thresholds
from extractor.classify.trainer import Trainer

__all__ = ["FORMAT", "IssueClassifier", "ModelConfig", "TrainConfig", "data_hash", "group_folds",
           "predictions_summary", "sentence_spans", "split_sentences", "tune_thresholds", "Trainer",
           "verify_model_dir"]
