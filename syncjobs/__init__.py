"""The syncjobs app: sync jobs from start to finish (services, tasks, runner, scheduler), the sync
engine, and the job pages."""
