"""Benchmarks of the `bench` command: settings, machine (peak), train_speed, inference_speed,
api_speed (dlib peer, degrade, predict/track), flops, runner (run_benchmark), report."""
