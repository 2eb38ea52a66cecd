def test_dashboard_shows_current_sandbox(login, marketer, sandbox):
    response = login(marketer).get("/")
    assert response.status_code == 200
    assert sandbox.title in response.content.decode()
