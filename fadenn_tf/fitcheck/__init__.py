"""The fitting-failure detector (paper section IV-D): is a landmark fit good? A property of
a fit, so it sits below both users: Predictor gives every face a fit_score with it and the
Tracker re-initialises when a fit fails it.

features (extract_features: patches around the landmarks), detector (FailureDetector:
logistic regression over them, its .npz file, failure_detector_from_spec: a command's
--failure-detector or "auto", the one shipped beside a model), examples (training and test
examples, train_failure_detector: what `train_failure_detector` runs).
"""
