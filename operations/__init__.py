"""What operators run the platform with: health checks, metrics and structured logs."""
