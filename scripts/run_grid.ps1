# Thin wrapper: every argument goes to `yolo-mlops grid` (see `yolo-mlops grid --help`).
# Example: powershell -ExecutionPolicy Bypass -File scripts\run_grid.ps1 --grid grids\course.yaml --workers 2
$root = Split-Path -Parent $PSScriptRoot
$exe = Join-Path $root ".venv\Scripts\yolo-mlops.exe"
if (-not (Test-Path $exe)) { $exe = "yolo-mlops" }
& $exe grid @args
exit $LASTEXITCODE
