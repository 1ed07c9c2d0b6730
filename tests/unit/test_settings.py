"""Config layering: embedded defaults, env overlay, --config file, PRINTFORGE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from printforge.runtime.errors import ConfigError
from printforge.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for var in list(os.environ):
        if var.startswith("PRINTFORGE_"):
            monkeypatch.delenv(var)
    return monkeypatch


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A small config tree of our own, so the test pins down the layering rules."""
    root = tmp_path / "config"
    (root / "printers").mkdir(parents=True)
    (root / "materials").mkdir()
    (root / "default.toml").write_text(
        'log_level = "WARNING"\nsim_speed = 10.0\n'
        "[slicer]\nlayer_height = 0.2\nperimeters = 2\n"
        '[server]\nport = 8470\nhost = "127.0.0.1"\n'
    )
    (root / "development.toml").write_text("[slicer]\nperimeters = 3\n")
    (root / "production.toml").write_text('log_level = "ERROR"\n[server]\nhost = "0.0.0.0"\n')
    (root / "printers" / "small.toml").write_text("bed_x = 120.0\nbed_y = 120.0\nmax_z = 100.0\n")
    (root / "materials" / "PLA.toml").write_text(
        "hotend_temp = 210.0\nbed_temp = 60.0\nmax_hotend_temp = 235.0\n"
    )
    return root


def test_the_embedded_config_loads_with_a_virtual_printer(clean_env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.env == "development"
    assert s.printers["virtual"].driver == "virtual"
    assert {"PLA", "PETG", "ABS"} <= set(s.materials)
    assert s.material("pla").name == "PLA"
    assert s.printer_profile("virtual").bed_x > 0


def test_no_configuration_at_all_still_has_the_virtual_printer(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    s = load_settings(base_dir=empty)
    assert "virtual" in s.printers
    assert s.printer_profile("virtual").name == "generic-220"


def test_overlay_is_deep_merged(clean_env: pytest.MonkeyPatch, base: Path) -> None:
    s = load_settings(base_dir=base)
    assert s.slicer.perimeters == 3  # development overlay
    assert s.slicer.layer_height == 0.2  # kept from default: merged, not replaced
    prod = load_settings(base_dir=base, env="production")
    assert prod.slicer.perimeters == 2
    assert prod.server.host == "0.0.0.0"
    assert prod.server.port == 8470
    assert prod.log_level == "ERROR"


def test_env_selects_the_overlay(clean_env: pytest.MonkeyPatch, base: Path) -> None:
    clean_env.setenv("PRINTFORGE_ENV", "production")
    assert load_settings(base_dir=base).env == "production"
    clean_env.setenv("PRINTFORGE_ENV", "moon")
    with pytest.raises(ConfigError, match="PRINTFORGE_ENV='moon'"):
        load_settings(base_dir=base)


def test_config_file_then_variables_win(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    user = tmp_path / "mine.toml"
    user.write_text(
        "sim_speed = 50.0\n[slicer]\nperimeters = 4\n"
        '[printers.bench]\ndriver = "virtual"\nprofile = "small"\nmaterial = "PLA"\n'
    )
    s = load_settings(user, base_dir=base)
    assert s.slicer.perimeters == 4
    assert s.sim_speed == 50.0
    assert s.printer_profile("bench").bed_x == 120.0
    clean_env.setenv("PRINTFORGE_SIM_SPEED", "75")
    clean_env.setenv("PRINTFORGE_SLICER__PERIMETERS", "5")
    s = load_settings(user, base_dir=base)
    assert s.sim_speed == 75.0
    assert s.slicer.perimeters == 5
    assert s.slicer.layer_height == 0.2


@pytest.mark.parametrize(
    ("content", "key", "reason"),
    [
        ("[slicer]\nperimiters = 3\n", "slicer.perimiters", "unknown key"),
        ('[slicer]\nlayer_height = "thick"\n', "slicer.layer_height", "valid number"),
        # Driver-specific keys are checked by the driver's own Config.
        (
            '[printers.p1]\ndriver = "virtual"\nprofile = "small"\nbaudrate = 9600\n',
            "printers.p1.baudrate",
            "unknown key",
        ),
    ],
)
def test_a_bad_user_file_names_key_and_file(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path, content: str, key: str, reason: str
) -> None:
    user = tmp_path / "mine.toml"
    user.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(user, base_dir=base)
    assert key in err.value.message
    assert reason in err.value.message
    assert str(user) in err.value.message


def test_bad_value_in_an_embedded_file_names_that_file(
    clean_env: pytest.MonkeyPatch, base: Path
) -> None:
    (base / "development.toml").write_text("[server]\nport = -4\n")
    with pytest.raises(ConfigError) as err:
        load_settings(base_dir=base)
    assert "server.port" in err.value.message
    assert str(base / "development.toml") in err.value.message


def test_bad_variable_names_the_variable(clean_env: pytest.MonkeyPatch, base: Path) -> None:
    clean_env.setenv("PRINTFORGE_SLICER__PERIMETERS", "many")
    with pytest.raises(ConfigError) as err:
        load_settings(base_dir=base)
    assert "PRINTFORGE_SLICER__PERIMETERS" in err.value.message


def test_a_plain_value_for_a_whole_table_names_the_variable(
    clean_env: pytest.MonkeyPatch, base: Path
) -> None:
    # PRINTFORGE_SERVER is read as the whole [server] table; a URL there used to end in an
    # "unexpected error" from pydantic-settings instead of a message saying what to set.
    clean_env.setenv("PRINTFORGE_SERVER", "http://127.0.0.1:8470")
    with pytest.raises(ConfigError) as err:
        load_settings(base_dir=base)
    assert "PRINTFORGE_SERVER must be a JSON object for the [server] table" in err.value.message
    assert "PRINTFORGE_SERVER__KEY" in err.value.message


def test_unknown_driver_and_profile_are_refused(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    user = tmp_path / "p.toml"
    user.write_text('[printers.p1]\ndriver = "teleport"\nprofile = "small"\n')
    # The key and the file that set it, like every other bad value.
    with pytest.raises(
        ConfigError,
        match=rf"printers\.p1\.driver: unknown printer driver 'teleport'.*\(in {user}\)",
    ):
        load_settings(user, base_dir=base)
    user.write_text('[printers.p1]\ndriver = "virtual"\nprofile = "huge"\n')
    with pytest.raises(ConfigError, match=r"printers\.p1\.profile: unknown printer profile 'huge'"):
        load_settings(user, base_dir=base)


def test_broken_toml_is_named(clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path) -> None:
    user = tmp_path / "broken.toml"
    user.write_text("[slicer\n")
    with pytest.raises(ConfigError, match=f"config file {user} is not valid TOML"):
        load_settings(user, base_dir=base)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", base_dir=base)


def test_secrets_do_not_print(clean_env: pytest.MonkeyPatch, base: Path) -> None:
    clean_env.setenv("PRINTFORGE_API_KEY", "pf-very-secret")
    s = load_settings(base_dir=base)
    assert s.api_key is not None
    assert s.api_key.get_secret_value() == "pf-very-secret"
    assert "pf-very-secret" not in repr(s)
    assert "pf-very-secret" not in s.model_dump_json()


def test_declared_printers_replace_the_virtual_default(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    user = tmp_path / "farm.toml"
    user.write_text('[printers.mk3]\ndriver = "virtual"\nprofile = "small"\n')
    s = load_settings(user, base_dir=base)
    assert list(s.printers) == ["mk3"]
    assert s.default_printer == "mk3"
    user.write_text('default_printer = "nope"\n' + user.read_text())
    with pytest.raises(ConfigError, match="default_printer"):
        load_settings(user, base_dir=base)


def test_an_unknown_nested_key_from_a_variable_names_the_variable(
    clean_env: pytest.MonkeyPatch, base: Path
) -> None:
    # [server] comes from default.toml, but `retry` under it was only ever in the variable.
    clean_env.setenv("PRINTFORGE_SERVER__RETRY__MAX_ATTEMPTS", "7")
    with pytest.raises(ConfigError) as err:
        load_settings(base_dir=base)
    assert "server.retry: unknown key" in str(err.value)
    assert "PRINTFORGE_SERVER__RETRY__MAX_ATTEMPTS" in str(err.value)
    assert "default.toml" not in str(err.value)


def test_data_dir_expands_home_and_is_absolute(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    # A TOML file is not read by a shell: "~" must not become a folder named "~".
    clean_env.setenv("HOME", str(tmp_path / "home"))
    user = tmp_path / "d.toml"
    user.write_text('data_dir = "~/pf"\n')
    assert load_settings(user, base_dir=base).data_dir == tmp_path / "home" / "pf"
    # A relative --data-dir is pinned at load time, so artifact paths in reports are absolute.
    clean_env.chdir(tmp_path)
    s = load_settings(base_dir=base, overrides={"data_dir": "rel"})
    assert s.data_dir == tmp_path / "rel"
    assert s.data_dir.is_absolute()


def test_model_level_and_missing_keys_name_the_variable(
    clean_env: pytest.MonkeyPatch, base: Path
) -> None:
    clean_env.setenv("PRINTFORGE_DEFAULT_PRINTER", "ghost")
    with pytest.raises(ConfigError, match=r"no printer named 'ghost' \(in environment variable"):
        load_settings(base_dir=base, overrides={"data_dir": "elsewhere"})
    clean_env.delenv("PRINTFORGE_DEFAULT_PRINTER")
    # A Marlin printer declared by variables alone, without its port.
    clean_env.setenv("PRINTFORGE_PRINTERS__MK3__DRIVER", "marlin")
    clean_env.setenv("PRINTFORGE_PRINTERS__MK3__PROFILE", "small")
    with pytest.raises(
        ConfigError, match=r"printers\.mk3\.port: Field required \(in environment variable"
    ):
        load_settings(base_dir=base)


def test_command_line_flags_win_over_variables(clean_env: pytest.MonkeyPatch, base: Path) -> None:
    # A service's PRINTFORGE_DATA_DIR must not swallow `--data-dir /tmp/try` typed by hand.
    clean_env.setenv("PRINTFORGE_DATA_DIR", "/srv/printforge")
    clean_env.setenv("PRINTFORGE_SIM_SPEED", "7")
    clean_env.setenv("PRINTFORGE_SLICER__PERIMETERS", "5")
    s = load_settings(
        base_dir=base,
        overrides={"data_dir": "/tmp/try", "sim_speed": 1000, "slicer": {"layer_height": 0.3}},
    )
    assert s.data_dir == Path("/tmp/try")
    assert s.sim_speed == 1000
    # Keys the flags do not name still come from the variables (a deep merge, not a swap).
    assert s.slicer.perimeters == 5 and s.slicer.layer_height == 0.3
    without_flags = load_settings(base_dir=base)
    assert without_flags.data_dir == Path("/srv/printforge") and without_flags.sim_speed == 7
    with pytest.raises(ConfigError, match=r"sim_speed: .*\(in command line\)"):
        load_settings(base_dir=base, overrides={"sim_speed": -1})


def test_a_variable_overrides_a_table_whose_name_has_capitals(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    # Variables arrive lower-cased: PRINTFORGE_MATERIALS__PLA__* made an incomplete `pla`, and
    # PRINTFORGE_PRINTERS__MK3__* a second printer `mk3` beside `MK3`.
    user = tmp_path / "farm.toml"
    user.write_text('[printers.MK3]\ndriver = "virtual"\nprofile = "small"\n')
    clean_env.setenv("PRINTFORGE_MATERIALS__PLA__HOTEND_TEMP", "205")
    clean_env.setenv("PRINTFORGE_PRINTERS__MK3__BED_CLEAR_REQUIRED", "true")
    s = load_settings(user, base_dir=base)
    assert list(s.materials) == ["PLA"]
    assert s.materials["PLA"].hotend_temp == 205
    assert s.materials["PLA"].bed_temp == 60
    assert list(s.printers) == ["MK3"]
    assert s.printers["MK3"].bed_clear_required is True
    clean_env.setenv("PRINTFORGE_MATERIALS__PLA__HOTEND_TEMP", "hot")
    with pytest.raises(ConfigError, match=r"materials\.PLA\.hotend_temp: .*PRINTFORGE_MATERIALS"):
        load_settings(user, base_dir=base)


def test_the_embedded_overlays_change_what_developers_md_says(
    clean_env: pytest.MonkeyPatch,
) -> None:
    dev = load_settings(env="development")
    assert dev.mock is False and dev.sim_speed == 200.0
    staging = load_settings(env="staging")
    assert staging.mock is True
    assert staging.log_level == "INFO"
    assert staging.server.host == "0.0.0.0"
    prod = load_settings(env="production")
    assert prod.mock is False
    assert prod.sim_speed == 1.0
    assert prod.server.host == "0.0.0.0" and prod.server.auth_required is True
    assert prod.policy("cad").breaker_failure_threshold == 3
    assert dev.policy("cad").breaker_failure_threshold == 5


def test_a_check_across_keys_names_the_file_of_the_key_it_names(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    # PLA's table starts in materials/PLA.toml; the too-hot value is the user's.
    user = tmp_path / "hot.toml"
    user.write_text("[materials.PLA]\nhotend_temp = 290.0\n")
    with pytest.raises(ConfigError) as err:
        load_settings(user, base_dir=base)
    assert "hotend_temp 290.0 exceeds max_hotend_temp 235.0" in err.value.message
    assert f"(in {user})" in err.value.message


def test_a_material_the_printer_cannot_reach_stops_start_up(
    clean_env: pytest.MonkeyPatch, base: Path, tmp_path: Path
) -> None:
    # Was accepted, then refused by the G-code gate only after research, CAD and slicing.
    user = tmp_path / "cold.toml"
    user.write_text(
        "[printer_profiles.cold]\nmax_hotend_temp = 200.0\n"
        '[printers.c1]\ndriver = "virtual"\nprofile = "cold"\nmaterial = "PLA"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(user, base_dir=base)
    assert (
        "printers.c1.material: PLA needs the hotend at 210 °C, above profile cold's"
        " max_hotend_temp 200 °C" in err.value.message
    )
    assert f"(in {user})" in err.value.message


def test_a_plain_value_for_a_list_names_that_variable(
    clean_env: pytest.MonkeyPatch, base: Path
) -> None:
    # Was: "PRINTFORGE_LLM must be a JSON object", about a variable nobody had set.
    clean_env.setenv("PRINTFORGE_LLM__PROVIDERS", "offline")
    clean_env.setenv("PRINTFORGE_LLM__MAX_TOKENS", "1024")  # a plain key beside it is fine
    clean_env.setenv("PRINTFORGE_LLM__CACHE__BACKEND", "memory")
    with pytest.raises(ConfigError) as err:
        load_settings(base_dir=base)
    assert "PRINTFORGE_LLM__PROVIDERS takes a list or a table, written in JSON" in err.value.message
    clean_env.setenv("PRINTFORGE_LLM__PROVIDERS", '["offline"]')
    assert load_settings(base_dir=base).llm.providers == ["offline"]
