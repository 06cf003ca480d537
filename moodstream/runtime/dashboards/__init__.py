"""Grafana dashboards as code (grafana-foundation-sdk), their panel SQL, and pushing them to Grafana.

* :mod:`.sql` - the SQL of every panel and variable (PostgreSQL + Grafana macros);
* :mod:`.build` - the *Customer satisfaction* and *Camera health* dashboards;
* :mod:`.macros` - Grafana's PostgreSQL macro/variable expansion, for checking SQL;
* :mod:`.push` - datasource + dashboards to a Grafana server (grafana-client).

Nothing here imports the SDK or grafana-client at import time of the package.
"""
