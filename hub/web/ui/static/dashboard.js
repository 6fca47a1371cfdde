// The dashboard is rendered by the server; this only wires the header.
import { setupHeader } from "./common.js";

setupHeader();
document.getElementById("live")?.remove();
