// caniemail's support data over one email, through doiuse-email: node lint-email.mjs FILE CLIENT...
// Prints {"errors": [...], "warnings": [...]} as JSON. doiuse-email 0.4.1 lists no
// outlook.com client although its caniemail data holds one ("outlook.outlook-com"), so a
// client it does not list is added to the checker after it is built.
import { readFileSync } from 'node:fs';
import { DoIUseEmail } from 'doiuse-email';

const [file, ...clients] = process.argv.slice(2);
const listed = clients.filter((c) => c !== 'outlook.outlook-com');
const checker = new DoIUseEmail({ emailClients: listed });
if (clients.includes('outlook.outlook-com')) checker.emailClients.push('outlook.outlook-com');
const result = checker.check(readFileSync(file, 'utf8'));
process.stdout.write(JSON.stringify({ errors: result.errors ?? [], warnings: result.warnings ?? [] }));
