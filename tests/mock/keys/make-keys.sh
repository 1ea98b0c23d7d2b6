#!/bin/sh
# make-keys.sh - how the committed test keys in this folder were made (run once, by hand; the
# tests never run it). Everything here is a TEST fixture: no real Apple or Google credential.
set -eu
cd "$(dirname "$0")"
days=36500

# Test CA (EC P-256), trusted by clients that talk to the mocks.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days $days \
	-subj "/CN=platypus test CA" -keyout ca.key -out ca.pem \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# Server certificate for localhost / 127.0.0.1 / ::1, signed by the test CA.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj "/CN=localhost" -keyout server.key -out server.csr
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
	-out server.pem -extfile /dev/stdin <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT

# The same server key under a name only a test's own resolver knows (tests of hosts with several
# addresses, where libcurl would resolve "localhost" by itself). Added later than the rest.
openssl req -new -key server.key -subj "/CN=mock.platypus.test" -out server-alt.csr
openssl x509 -req -in server-alt.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
	-out server-alt.pem -extfile /dev/stdin <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:mock.platypus.test,IP:127.0.0.1
EXT

# APNs client certificate (certificate auth), shaped like Apple's: the topic is the subject UID.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj "/UID=com.example.app/CN=Apple Push Services: com.example.app/OU=DEF123GHIJ/O=Example/C=US" \
	-keyout client.key -out client.csr
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
	-out client.pem -extfile /dev/stdin <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EXT

# A client certificate NOT signed by the test CA (must be refused at the TLS handshake).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days $days \
	-subj "/UID=com.example.app/CN=rogue" -keyout rogue.key -out rogue.pem

# APNs token-auth signing key: a .p8 (PKCS#8 EC P-256) as Apple hands out, key id ABC123DEFG,
# and its public key for the mock (--public-key).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out AuthKey_ABC123DEFG.p8
openssl pkey -in AuthKey_ABC123DEFG.p8 -pubout -out AuthKey_ABC123DEFG.pub.pem
# A second EC key: tokens signed with it must be refused (bad signature).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out AuthKey_WRONG.p8

# FCM service-account key (RSA 2048, PKCS#8) and a second one for bad-signature tests.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out service-account.key
openssl pkey -in service-account.key -pubout -out service-account.pub.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out service-account-wrong.key

# The service-account JSON (Google's shape) around service-account.key. token_uri names the
# mock's fixed documentation port; tests ask the mock for a copy with its real port
# (fcm_mock.py --write-service-account).
/usr/bin/python3 - <<'PY'
import json
key = open("service-account.key").read()
sa = {
    "type": "service_account",
    "project_id": "platypus-test",
    "private_key_id": "0123456789abcdef0123456789abcdef01234567",
    "private_key": key,
    "client_email": "platypus-test@platypus-test.iam.gserviceaccount.com",
    "client_id": "100000000000000000001",
    "auth_uri": "https://127.0.0.1:8444/o/oauth2/auth",
    "token_uri": "https://127.0.0.1:8444/token",
    "auth_provider_x509_cert_url": "https://127.0.0.1:8444/oauth2/v1/certs",
    "client_x509_cert_url": "https://127.0.0.1:8444/robot/v1/metadata/x509/platypus-test",
    "universe_domain": "googleapis.com",
}
with open("service-account.json", "w") as f:
    json.dump(sa, f, indent=2)
    f.write("\n")
PY
rm -f server.csr server-alt.csr client.csr ca.srl
