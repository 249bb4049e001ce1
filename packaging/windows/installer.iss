; Inno Setup script for Llama Launcher (Windows). Built by packaging/build.py --installer, which passes:
;   /DAppVersion=X.Y.Z  /DSourceDir=dist\llama-launcher  /DIconFile=packaging\build\icons\app.ico
; Per-user install (no administrator rights needed), Start menu entry, optional desktop icon.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif

[Setup]
AppId={{5B1E9C3A-7C1F-4C55-9C3E-2E5B4A7D9F11}
AppName=Llama Launcher
AppVersion={#AppVersion}
AppPublisher=Llama Launcher contributors
DefaultDirName={localappdata}\Programs\Llama Launcher
DefaultGroupName=Llama Launcher
PrivilegesRequired=lowest
OutputBaseFilename=LlamaLauncher-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\llama-launcher.exe
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
ArchitecturesInstallIn64BitMode=x64compatible

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Llama Launcher"; Filename: "{app}\llama-launcher.exe"
Name: "{autodesktop}\Llama Launcher"; Filename: "{app}\llama-launcher.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\llama-launcher.exe"; Description: "{cm:LaunchProgram,Llama Launcher}"; Flags: nowait postinstall skipifsilent
