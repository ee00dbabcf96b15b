// node-oidc-provider 9.x with client credentials and introspection: the peer
// for erpgate's host benchmarks. Listens on 127.0.0.1 only.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 18800);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'read update',
    },
  ],
  scopes: ['read', 'update'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
  },
});
provider.proxy = false;
// Quiet: no per-request logging in the measured path.
provider.on('server_error', (ctx, err) => console.error(err));

provider.listen(port, '127.0.0.1', () => {
  console.log(`node-oidc-provider on ${issuer}`);
});
