"""`[printers.NAME.camera]`: its keys, its checks, and its place in the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from printforge.hardware.camera.config import (
    FAILURE_KINDS,
    NUISANCE_KINDS,
    CameraConfig,
    VirtualCameraOptions,
    parse_event_spec,
)
from printforge.runtime.errors import ConfigError
from printforge.settings import load_settings


def test_a_real_camera_needs_a_url() -> None:
    with pytest.raises(ValidationError, match="snapshot_url or stream_url"):
        CameraConfig()
    cam = CameraConfig(stream_url="http://octopi.local/webcam/?action=stream")
    assert cam.snapshot_url is None
    assert cam.resolution == (640, 480)


def test_virtual_true_means_the_default_options() -> None:
    cam = CameraConfig.model_validate({"virtual": True})
    assert cam.virtual == VirtualCameraOptions()
    assert (
        CameraConfig.model_validate({"virtual": False, "snapshot_url": "http://c/s"}).virtual
        is None
    )


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"snapshot_url": "ftp://cam/snap"}, "not an http"),
        ({"snapshot_url": "http://c/s", "zoom": 2}, "Extra inputs"),
        ({"snapshot_url": "http://c/s", "position": [0, 0, 100]}, "position and look_at"),
        ({"snapshot_url": "http://c/s", "resolution": [10, 10]}, "outside 16..4096"),
        ({"snapshot_url": "http://c/s", "fov_deg": 200}, "less than 170"),
        ({"virtual": {"failures": ["spaghetti"]}}, "needs its layer"),
        ({"virtual": {"failures": ["melted@3"]}}, "unknown kind 'melted'"),
        ({"virtual": {"nuisances": ["hand@0"]}}, "count from 1"),
        ({"virtual": {"color": "red"}}, "should match pattern"),
    ],
)
def test_bad_tables_are_refused(table: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        CameraConfig.model_validate(table)


@pytest.mark.parametrize(
    ("text", "kinds", "expected"),
    [
        ("spaghetti@30", FAILURE_KINDS, ("spaghetti", 30, None)),
        ("layer-shift@7", FAILURE_KINDS, ("layer_shift", 7, None)),
        ("hand", NUISANCE_KINDS, ("hand", None, None)),
        ("light@12+3", NUISANCE_KINDS, ("light", 12, 3)),
    ],
)
def test_event_specs(text: str, kinds: tuple[str, ...], expected: tuple[object, ...]) -> None:
    assert parse_event_spec(text, kinds) == expected


def test_a_printer_camera_in_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    config.write_text(
        "[printers.mk3]\ndriver = 'marlin'\nport = '/dev/null'\n"
        "[printers.mk3.camera]\nsnapshot_url = 'http://octopi.local/webcam/?action=snapshot'\n"
        "position = [125, -80, 160]\nlook_at = [125, 105, 10]\n"
    )
    settings = load_settings(config, env="development", overrides={"data_dir": str(tmp_path)})
    cam = settings.printer("mk3").camera
    assert cam is not None and cam.position == (125.0, -80.0, 160.0)
    # The camera is the printer's, not the driver's: the Marlin driver never sees the key.
    assert "camera" not in settings.printer("mk3").driver_options


def test_a_bad_camera_key_names_itself_and_its_file(tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    config.write_text("[printers.v.camera]\nsnapshot_url = 'http://c/s'\nbrightness = 3\n")
    with pytest.raises(ConfigError, match=r"printers\.v\.camera\.brightness: unknown key .*farm"):
        load_settings(config, env="development", overrides={"data_dir": str(tmp_path)})
