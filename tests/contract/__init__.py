import os

# schemathesis.toml authenticates generated calls with `${REGISTRY_TEST_TOKEN}`; the contract
# fixtures store this secret as an admin token in each test database.
os.environ.setdefault("REGISTRY_TEST_TOKEN", "lor_contract-tests-admin-token-0123456789abcdef")
