app_name = "syncjobs"

urlpatterns = []
