"""dvsync's jobs: the analytics, the service that runs them against Dataverse, and the command line.

Subpackages, and the one direction their imports go (``cli``, ``console`` → ``service`` → analytics)::

    jobs/cli/          the ``dvsync`` command: one thin module per subcommand (parse, call, render)
    jobs/console/      the admin console: web pages over the mirror, actions through the service
    jobs/service/      settings, mappings, mirror, sync, compute, plan, pipeline, rollback,
                       schedule, status, check, provision: one run, end to end
    jobs/leads/        lead analytics: scoring (rules, model) and duplicates (leads, contacts, accounts)
    jobs/customers/    customer analytics: orders, RFM, customer lifetime value
    jobs/errors.py     the analytics' errors; jobs/moments.py the dates every analytics job takes

The analytics are pure DataFrame functions and import neither the service, the CLI nor the
connector. Nothing is re-exported here: importing the analytics pulls in pandas, scipy and
scikit-learn, and every ``dvsync`` command (``dvsync --help`` included) imports this package first.
"""

__all__ = ["cli", "console", "customers", "errors", "leads", "moments", "service"]
