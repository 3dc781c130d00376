@echo off
rem Thin wrapper: every argument goes to `yolo-mlops grid` (see `yolo-mlops grid --help`).
rem Example: scripts\run_grid.cmd --grid grids\course.yaml --workers 2
set "EXE=%~dp0..\.venv\Scripts\yolo-mlops.exe"
if not exist "%EXE%" set "EXE=yolo-mlops"
"%EXE%" grid %*
exit /b %ERRORLEVEL%
