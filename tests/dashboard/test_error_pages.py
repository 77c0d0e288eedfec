"""Error pages are pages of the app: styled, in the user's context, with a way back."""


def test_404_is_a_styled_page_with_a_way_back(alice_client, connector_b):
    # Another organisation's connector: the same page as a connector that never existed.
    for url in (connector_b.get_absolute_url(), "/o/acme/connectors/999999/"):
        response = alice_client.get(url)
        assert response.status_code == 404
        html = response.content.decode()
        assert "<h1>Page not found</h1>" in html
        assert "css/app.css" in html  # the app's stylesheet, not Django's bare page
        assert 'href="/">Back to your connectors</a>' in html
        assert "Acme Association" in html  # the organisation nav is still there
        assert "Globex" not in html  # and says nothing of whose connector it was
