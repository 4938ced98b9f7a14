"""companion: the tested PyTorch package behind the PMLE Section 4 course.

Every public name of the package's modules is available here too, so
``from companion import fit, MLP, integrated_gradients`` works. The names are loaded
lazily (PEP 562): ``import companion`` stays fast, and a module such as
``companion.serving`` (FastAPI) is imported only when one of its names is used.
Self-check helpers live in :mod:`companion.exercises`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Where the course lives. The book's _config.yml and every notebook's Colab cell
# must agree with these (tests/notebooks/test_hygiene.py checks).
REPOSITORY_URL = "https://github.com/pmle-course/section4-companion"
RELEASE_TAG = "v0.1.0"

# public name -> the module that defines it (tests/test_init.py keeps this complete)
_EXPORTS: dict[str, str] = {
    # companion.utils
    "seed_everything": "utils",
    "get_device": "utils",
    "Timer": "utils",
    "interleaved_medians": "utils",
    # companion.data
    "make_categorical": "data",
    "make_related_tasks": "data",
    "TensorData": "data",
    "make_regression": "data",
    "make_classification": "data",
    "make_counts": "data",
    "make_shapes": "data",
    "load_digits": "data",
    "load_breast_cancer": "data",
    "split": "data",
    "standardize": "data",
    "make_loader": "data",
    "SHAPE_CLASSES": "data",
    "make_drifting_stream": "data",
    "make_sliced_chunks": "data",
    "make_sliced_classification": "data",
    # companion.models
    "MLP": "models",
    "SmallCNN": "models",
    "LinearRegression": "models",
    "LogisticRegression": "models",
    "PoissonRegression": "models",
    "SoftmaxClassifier": "models",
    "MultiLabelClassifier": "models",
    # companion.sampled_softmax
    "SampledSoftmaxLoss": "sampled_softmax",
    "full_softmax_loss": "sampled_softmax",
    "step_times": "sampled_softmax",
    "SAMPLERS": "sampled_softmax",
    # companion.training
    "History": "training",
    "TrainingState": "training",
    "Callback": "training",
    "fit": "training",
    "save_checkpoint": "training",
    "load_checkpoint": "training",
    # companion.regularization
    "NORM_LAYERS": "regularization",
    "regularized_parameters": "regularization",
    "l2_penalty": "regularization",
    "weight_norm": "regularization",
    "L2Regularized": "regularization",
    "EarlyStopping": "regularization",
    "SweepResult": "regularization",
    "lambda_sweep": "regularization",
    # companion.embeddings
    "embedding_dim_rule_of_thumb": "embeddings",
    "CategoryEmbeddingModel": "embeddings",
    # companion.transfer
    "freeze": "transfer",
    "unfreeze": "transfer",
    "count_trainable": "transfer",
    "new_head": "transfer",
    "pretrain_backbone": "transfer",
    "load_pretrained_model": "transfer",
    "load_pretrained_backbone": "transfer",
    "torchvision_backbone": "transfer",
    "BACKBONE_FILE": "transfer",
    # companion.metrics
    "UndefinedMetricWarning": "metrics",
    "ThresholdChoice": "metrics",
    "accuracy": "metrics",
    "confusion_matrix": "metrics",
    "precision": "metrics",
    "recall": "metrics",
    "f1": "metrics",
    "roc_curve": "metrics",
    "roc_auc": "metrics",
    "pr_curve": "metrics",
    "pr_auc": "metrics",
    "threshold_for": "metrics",
    "wilson_lower_bound": "metrics",
    "prediction_bias": "metrics",
    # companion.evaluation
    "METRICS": "evaluation",
    "ModelComparison": "evaluation",
    "compare_models": "evaluation",
    "predict": "evaluation",
    "output_to_labels": "evaluation",
    "output_to_scores": "evaluation",
    "accuracy_from_logits": "evaluation",
    # companion.baselines
    "MostCommonLabel": "baselines",
    "MeanRegressor": "baselines",
    "BestSingleFeature": "baselines",
    # companion.checks
    "ModelCheckError": "checks",
    "StaleModelWarning": "checks",
    "smoke_step": "checks",
    "overfit_small_batch": "checks",
    "label_leak_check": "checks",
    "check_reproducible": "checks",
    "assert_finite": "checks",
    "alive_fraction": "checks",
    "assert_alive": "checks",
    "SkewReport": "checks",
    "population_stability_index": "checks",
    "training_serving_skew": "checks",
    "ModelCard": "checks",
    "ModelAge": "checks",
    "model_age": "checks",
    "quality_gate": "checks",
    "check_export_roundtrip": "checks",
    "monitor_live_quality": "checks",
    # companion.diagnostics
    "GradientMonitor": "diagnostics",
    "dead_relu_fraction": "diagnostics",
    "WEIGHTED_LAYERS": "diagnostics",
    # companion.slicing
    "sliced_metrics": "slicing",
    "OVERALL": "slicing",
    # companion.explain
    "Attributions": "explain",
    "AttackResult": "explain",
    "attack_attributions": "explain",
    "differentiable_integrated_gradients": "explain",
    "top_k_overlap": "explain",
    "XRAIResult": "explain",
    "aggregate_attributions": "explain",
    "felzenszwalb_masks": "explain",
    "fraction_inside": "explain",
    "integrated_gradients": "explain",
    "sampled_shapley": "explain",
    "top_fraction_mask": "explain",
    "xrai": "explain",
    # companion.serving
    "BatchRejected": "serving",
    "BatchReport": "serving",
    "Prediction": "serving",
    "PredictionTable": "serving",
    "RunningServer": "serving",
    "batch_predict": "serving",
    "create_app": "serving",
    "ks_statistic": "serving",
    "serve": "serving",
    "verify_predictions": "serving",
    # companion.online_learning
    "BatchRecord": "online_learning",
    "StreamLog": "online_learning",
    "Guard": "online_learning",
    "DynamicTrainer": "online_learning",
    "train_static": "online_learning",
    "evaluate_stream": "online_learning",
    # companion.distributed
    "JobFailedError": "distributed",
    "JobTimeoutError": "distributed",
    "LaunchResult": "distributed",
    "RankResult": "distributed",
    "assign_roles": "distributed",
    "global_batches": "distributed",
    "launch": "distributed",
    "latest_checkpoint": "distributed",
    "read_status": "distributed",
    "run_evaluator": "distributed",
    "train_ddp": "distributed",
    "train_parameter_server": "distributed",
    # companion.hardware
    "Recommendation": "hardware",
    "Throughput": "hardware",
    "Workload": "hardware",
    "matrix_time_fraction": "hardware",
    "measure_throughput": "hardware",
    "peak_memory": "hardware",
    "recommend_hardware": "hardware",
    # companion.analysis
    "TASKS": "analysis",
    "sliced_metrics_query": "analysis",
    "sliced_metrics_sql": "analysis",
    "write_predictions_parquet": "analysis",
    # companion.backprop
    "ScratchMLP": "backprop",
    # companion.gradient_descent
    "DescentRun": "gradient_descent",
    "minibatch_descent": "gradient_descent",
    "gradient_noise": "gradient_descent",
    # companion.plots
    "plot_weight_histograms": "plots",
    "plot_lambda_sweep": "plots",
    "plot_transfer_curve": "plots",
    "plot_embedding_sweep": "plots",
    "plot_history": "plots",
    "plot_descent_runs": "plots",
    "plot_gradient_noise": "plots",
    "plot_loss_along_path": "plots",
    "plot_confusion_matrix": "plots",
    "plot_roc_curve": "plots",
    "plot_pr_curve": "plots",
    "plot_latency": "plots",
    "plot_stream_scores": "plots",
    "plot_correlation_matrix": "plots",
    "plot_live_quality": "plots",
    "plot_activations": "plots",
    "plot_step_times": "plots",
    "plot_predicted_vs_observed": "plots",
    "plot_loss_curves": "plots",
    "plot_throughput": "plots",
    "plot_sliced_metrics": "plots",
    "plot_attribution_overlay": "plots",
    "plot_top_region": "plots",
    "plot_feature_attributions": "plots",
    "plot_layer_gradient_norms": "plots",
    "plot_gradient_norm_history": "plots",
    "plot_dead_units": "plots",
    "plot_slice_bias": "plots",
}

__all__ = ["REPOSITORY_URL", "RELEASE_TAG", "__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'companion' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"companion.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
