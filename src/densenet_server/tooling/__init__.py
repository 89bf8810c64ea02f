"""The benchmark, soak and load tooling (`densenet-server bench`, `soak`); `serve` never imports it."""
