"""`modelport quickstart`: train two demo versions, alias them, print requests, serve."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from modelport.config import Settings
from modelport.errors import NotFoundError
from modelport.registry import Registry, stage_object

DEMO = "iris"


def prepare_demo(settings: Settings, console: Console) -> None:
    """Register v1 (logistic regression) and v2 (gradient boosting) unless already there."""
    registry = Registry.from_settings(settings)
    try:
        try:
            model = registry.get_model(DEMO)
            if "production" in model.aliases:
                console.print(f"demo model {DEMO!r} already registered "
                              f"(production -> v{model.aliases['production']})")
                return
        except NotFoundError:
            pass
        data = load_iris(as_frame=True)
        features = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        labels = pd.Series(data.target_names[data.target])
        X_train, X_test, y_train, y_test = train_test_split(
            features, labels, test_size=0.3, random_state=42, stratify=labels)
        candidates = [("logistic regression", LogisticRegression(max_iter=1000)),
                      ("gradient boosting", HistGradientBoostingClassifier(random_state=0))]
        versions = []
        for description, estimator in candidates:
            estimator.fit(X_train, y_train)
            accuracy = float(estimator.score(X_test, y_test))
            with console.status(f"registering {description}"), \
                    stage_object(estimator, X_train.head(20)) as staged:
                record = registry.register(
                    DEMO, staged, description=description, metrics={"accuracy": accuracy},
                    params=estimator.get_params(), tags={"dataset": "iris"})
            versions.append(record.version)
            console.print(f"registered {record.address}: {description}, "
                          f"accuracy {accuracy:.3f}")
        registry.set_alias(DEMO, "production", versions[0])
        registry.set_alias(DEMO, "staging", versions[1])
        console.print(f"aliases: production -> v{versions[0]}, staging -> v{versions[1]}")
    finally:
        registry.close()


def print_examples(settings: Settings, console: Console) -> None:
    url = f"http://{settings.host}:{settings.port}"
    row = "[5.1, 3.5, 1.4, 0.2]"
    console.print(f"""
[bold]Serving {DEMO}@production at {url}[/bold]  (docs: {url}/docs)

KServe V1:
  curl -s {url}/v1/models/{DEMO}:predict -d '{{"instances": [{row}]}}'
  curl -s '{url}/v1/models/{DEMO}:predict?output=probabilities' -d '{{"instances": [{row}]}}'
Open Inference Protocol V2:
  curl -s {url}/v2/models/{DEMO}/infer -d '{{"inputs": [{{"name": "input", "shape": [1, 4], \
"datatype": "FP64", "data": {row}}}]}}'
MLflow scoring protocol:
  curl -s {url}/invocations -H 'Content-Type: application/json' \\
       -d '{{"dataframe_split": {{"columns": ["sepal_length", "sepal_width", \
"petal_length", "petal_width"], "data": [{row}]}}}}'
Promote v2 while serving (the server switches without dropping a request):
  modelport alias set {DEMO} production 2
Metrics: curl -s {url}/metrics
""", highlight=False, soft_wrap=True)  # wrapped lines would break copy-paste
