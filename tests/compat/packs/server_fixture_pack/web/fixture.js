// The front-end half of the fixture pack: ComfyUI's front end imports every listed extension script.
export const FIXTURE = "server_fixture_pack";
