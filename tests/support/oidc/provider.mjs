// A disposable OpenID Connect provider for Warren's single sign-on tests, on 127.0.0.1:
//   node provider.mjs <port> <console's redirect URI> <client secret>
// Two people: vera (group support) and bob (group sre); any password. The sign-in and consent
// pages are oidc-provider's own development ones.
import Provider from "oidc-provider";

const [port, redirectUri, clientSecret] = process.argv.slice(2);
const PEOPLE = {
  vera: { email: "vera@example.com", name: "Vera", groups: ["support"] },
  bob: { email: "bob@example.com", name: "Bob", groups: ["sre"] },
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: "warren",
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    // Streamlit's st.logout sends people back to the same address.
    post_logout_redirect_uris: [redirectUri],
  }],
  scopes: ["openid", "email", "profile", "groups"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    groups: ["groups"],
  },
  // The claims go into the ID token, where Streamlit's st.user reads them.
  conformIdTokenClaims: false,
  cookies: { keys: ["warren-tests-only"] },
  async findAccount(ctx, id) {
    const person = PEOPLE[id];
    return person && {
      accountId: id,
      async claims() {
        return { sub: id, email_verified: true, ...person };
      },
    };
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`listening on ${port}`));
