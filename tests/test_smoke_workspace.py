from mixwise.workspace import Workspace


def test_workspace_settings_roundtrip(workspace: Workspace) -> None:
    assert workspace.currency == "CNY"
    workspace.set_setting("currency", "USD")
    assert workspace.currency == "USD"
