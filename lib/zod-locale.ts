// English messages for zod/mini, the functional build of zod that the modules on the CNI
// executables' start-up path use (its schemas cost a fraction of classic zod's init per process).
// Unlike classic zod, mini installs no locale: its issues would all read "Invalid input", and our
// messages print issue.message ("a.b: Invalid input: expected string, received number"). Every
// module with mini schemas imports this one for its effect. (Not a module re-exporting `z`: a zod
// namespace object that escapes keeps all of zod, every locale included, in the bundle.)
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());
