"""The login form: Django's, with its username length actually enforced."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class LoginForm(AuthenticationForm):
    """AuthenticationForm sets the username's max_length after the field is built, so only the
    HTML attribute gets it, not validation: a longer name went on to authenticate(), and
    django-axes' record of the failed attempt (a 255-character column) failed with it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = self.fields["username"].max_length
        self.fields["username"].validators.append(MaxLengthValidator(limit))
